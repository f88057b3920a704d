variable "name" {
  description = "Project name, such as platform-prod."
  type        = string

  validation {
    condition     = length(var.name) >= 1 && length(var.name) <= 175
    error_message = "name must be 1 to 175 characters long."
  }
}

variable "description" {
  description = "Project description shown in the DigitalOcean console."
  type        = string
  default     = ""

  validation {
    condition     = length(var.description) <= 255
    error_message = "description must be at most 255 characters long."
  }
}

variable "purpose" {
  description = "Project purpose, one of DigitalOcean's fixed purposes or \"Other: <text>\"."
  type        = string
  default     = "Service or API"

  validation {
    condition = contains([
      "Just trying out DigitalOcean", "Class project / Educational purposes", "Website or blog",
      "Web Application", "Service or API", "Mobile Application", "Machine learning / AI / Data processing",
      "IoT", "Operational / Developer tooling",
    ], var.purpose) || can(regex("^Other: .{1,248}$", var.purpose))
    error_message = "purpose must be one of: Just trying out DigitalOcean, Class project / Educational purposes, Website or blog, Web Application, Service or API, Mobile Application, Machine learning / AI / Data processing, IoT, Operational / Developer tooling, or \"Other: <text>\"."
  }
}

variable "environment" {
  description = "Project environment label."
  type        = string
  default     = "Production"

  validation {
    condition     = contains(["Development", "Staging", "Production"], var.environment)
    error_message = "environment must be one of: Development, Staging, Production."
  }
}

variable "resources" {
  description = "URNs of the resources the project holds (droplets and volumes: do:droplet:<id>, do:volume:<uuid>)."
  type        = list(string)

  validation {
    condition     = length(var.resources) > 0
    error_message = "resources must hold at least one URN."
  }

  validation {
    # Unknown until the resources exist; a URN that is known must look like one.
    condition     = alltrue([for urn in var.resources : can(regex("^do:[a-z_]+:.+$", urn))])
    error_message = "Every resources entry must be a DigitalOcean URN, do:<type>:<id>, such as do:droplet:123 or do:volume:<uuid>."
  }
}
