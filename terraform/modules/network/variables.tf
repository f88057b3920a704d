variable "environment" {
  description = "Environment name; it names the VPC and the firewalls."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must match ^[a-z][a-z0-9-]{0,19}$: a lower-case letter, then up to 19 lower-case letters, digits or \"-\"."
  }
}

variable "region" {
  description = "DigitalOcean region slug of the VPC."
  type        = string

  validation {
    condition     = contains(["nyc1", "nyc3", "sfo2", "sfo3", "ams3", "sgp1", "lon1", "fra1", "tor1", "blr1", "syd1", "atl1"], var.region)
    error_message = "region must be one of: nyc1, nyc3, sfo2, sfo3, ams3, sgp1, lon1, fra1, tor1, blr1, syd1, atl1."
  }
}

variable "vpc_cidr" {
  description = "IPv4 range of the VPC (RFC 1918, /16 to /28); also the source of all intra-VPC firewall rules."
  type        = string

  validation {
    condition = try(
      can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$", var.vpc_cidr)) &&
      cidrhost(var.vpc_cidr, 0) == split("/", var.vpc_cidr)[0] &&
      tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 28,
      false
    )
    error_message = "vpc_cidr must be an IPv4 network address with a prefix from /16 to /28 and no host bits set, such as 10.42.0.0/24."
  }
}

variable "admin_cidrs" {
  description = "IPv4 or IPv6 networks allowed to reach SSH (tcp 22) on every host from outside the VPC."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.admin_cidrs : can(cidrhost(cidr, 0))])
    error_message = "Every admin_cidrs entry must be an IPv4 or IPv6 address/prefix, such as 203.0.113.0/24 or 2001:db8::/48."
  }
}

variable "environment_tag" {
  description = "Tag every droplet of the environment carries; the base firewall (SSH, ICMP, outbound) attaches to it. Pass a digitalocean_tag's name so the tag exists first."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9:_-]{1,255}$", var.environment_tag))
    error_message = "environment_tag must be 1 to 255 characters from a-z, A-Z, 0-9, \":\", \"_\" and \"-\" (DigitalOcean tag names)."
  }
}

variable "group_tags" {
  description = "Tag of each group that has hosts, keyed by group; a group's firewall attaches to its tag, and service_rules admit their source groups by it. Pass digitalocean_tag names so the tags exist first."
  type        = map(string)

  validation {
    condition     = alltrue([for group in keys(var.group_tags) : contains(["trino_coordinator", "trino_worker", "minio", "postgres", "monitoring", "apps"], group)])
    error_message = "Every group_tags key must be one of: trino_coordinator, trino_worker, minio, postgres, monitoring, apps."
  }

  validation {
    condition     = alltrue([for tag in values(var.group_tags) : can(regex("^[a-zA-Z0-9:_-]{1,255}$", tag))])
    error_message = "Every group_tags value must be 1 to 255 characters from a-z, A-Z, 0-9, \":\", \"_\" and \"-\" (DigitalOcean tag names)."
  }
}

variable "group_ports" {
  description = "TCP ports each group serves inside the VPC, keyed by group; opened from vpc_cidr to that group's tag only. Groups absent from group_tags are ignored."
  type        = map(list(number))
  default     = {}

  validation {
    condition     = alltrue([for group in keys(var.group_ports) : contains(["trino_coordinator", "trino_worker", "minio", "postgres", "monitoring", "apps"], group)])
    error_message = "Every group_ports key must be one of: trino_coordinator, trino_worker, minio, postgres, monitoring, apps."
  }

  validation {
    condition     = alltrue(flatten([for ports in values(var.group_ports) : [for port in ports : port == floor(port) && port >= 1 && port <= 65535]]))
    error_message = "Every group_ports port must be a whole number from 1 to 65535."
  }

  validation {
    condition     = alltrue([for ports in values(var.group_ports) : length(distinct(ports)) <= 50])
    error_message = "Every group_ports list may hold at most 50 distinct ports: a DigitalOcean firewall holds at most 50 inbound rules, and the group's public_ports count against the same 50 (checked per group firewall)."
  }
}

variable "public_ports" {
  description = "TCP ports each group serves to users, keyed by group; opened from the whole internet (0.0.0.0/0, ::/0) to that group's tag only. Groups absent from group_tags are ignored."
  type        = map(list(number))
  default     = {}

  validation {
    condition     = alltrue([for group in keys(var.public_ports) : contains(["trino_coordinator", "trino_worker", "minio", "postgres", "monitoring", "apps"], group)])
    error_message = "Every public_ports key must be one of: trino_coordinator, trino_worker, minio, postgres, monitoring, apps."
  }

  validation {
    condition     = alltrue(flatten([for ports in values(var.public_ports) : [for port in ports : port == floor(port) && port >= 1 && port <= 65535]]))
    error_message = "Every public_ports port must be a whole number from 1 to 65535."
  }

  validation {
    condition     = alltrue([for ports in values(var.public_ports) : length(distinct(ports)) <= 50])
    error_message = "Every public_ports list may hold at most 50 distinct ports: a DigitalOcean firewall holds at most 50 inbound rules, and the group's group_ports count against the same 50 (checked per group firewall)."
  }
}

variable "service_rules" {
  description = "What every host serves to the hosts of a few groups only (the base role's base_firewall_service_rules, TCP): each port is opened on the base firewall from the tags of source_groups that are in group_tags; a rule none of whose groups has hosts opens nothing."
  type = list(object({
    name          = string
    ports         = list(number)
    source_groups = list(string)
  }))
  default = []

  validation {
    condition     = alltrue([for rule in var.service_rules : can(regex("^[A-Za-z0-9_.-]+$", rule.name))])
    error_message = "Every service_rules name must be letters, digits, \"_\", \".\" or \"-\" (such as node_exporter)."
  }

  validation {
    condition     = alltrue(flatten([for rule in var.service_rules : [for group in rule.source_groups : contains(["trino_coordinator", "trino_worker", "minio", "postgres", "monitoring", "apps"], group)]]))
    error_message = "Every service_rules source_groups entry must be one of: trino_coordinator, trino_worker, minio, postgres, monitoring, apps."
  }

  validation {
    condition     = alltrue(flatten([for rule in var.service_rules : [for port in rule.ports : port == floor(port) && port >= 1 && port <= 65535]]))
    error_message = "Every service_rules port must be a whole number from 1 to 65535."
  }
}
