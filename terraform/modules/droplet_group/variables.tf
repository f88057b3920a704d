variable "environment" {
  description = "Environment name (used in messages and descriptions)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must match ^[a-z][a-z0-9-]{0,19}$: a lower-case letter, then up to 19 lower-case letters, digits or \"-\"."
  }
}

variable "group" {
  description = "The host group these droplets form."
  type        = string

  validation {
    condition     = contains(["trino_coordinator", "trino_worker", "minio", "postgres", "monitoring", "apps"], var.group)
    error_message = "group must be one of: trino_coordinator, trino_worker, minio, postgres, monitoring, apps."
  }
}

variable "region" {
  description = "DigitalOcean region slug of the droplets and volumes."
  type        = string

  validation {
    condition     = contains(["nyc1", "nyc3", "sfo2", "sfo3", "ams3", "sgp1", "lon1", "fra1", "tor1", "blr1", "syd1", "atl1"], var.region)
    error_message = "region must be one of: nyc1, nyc3, sfo2, sfo3, ams3, sgp1, lon1, fra1, tor1, blr1, syd1, atl1."
  }
}

variable "image" {
  description = "Droplet image slug or numeric id. Changing it replaces the droplets."
  type        = string
  default     = "debian-12-x64"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{0,63}$", var.image))
    error_message = "image must be an image slug of lower-case letters, digits, \".\" and \"-\" (such as debian-12-x64) or a numeric image id."
  }
}

variable "domain" {
  description = "DNS domain; each droplet is named <host>.<domain>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$", var.domain)) && length(var.domain) <= 189
    error_message = "domain must be dot-separated labels of lower-case letters, digits and \"-\" (no leading or trailing \"-\", at most 63 characters each), at most 189 characters in all."
  }
}

variable "vpc_id" {
  description = "ID (UUID) of the VPC the droplets join."
  type        = string

  validation {
    condition     = length(var.vpc_id) > 0
    error_message = "vpc_id must be a non-empty VPC ID."
  }
}

variable "ssh_key_ids" {
  description = "DigitalOcean SSH key IDs or fingerprints to install for root (at least one)."
  type        = list(string)

  validation {
    condition     = length(var.ssh_key_ids) > 0
    error_message = "ssh_key_ids must hold at least one SSH key ID or fingerprint."
  }
}

variable "tags" {
  description = "Tags for every droplet and volume of the group. Pass digitalocean_tag names for tags that firewalls select, so the tags exist first."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for tag in var.tags : can(regex("^[a-zA-Z0-9:_-]{1,255}$", tag))])
    error_message = "Every tag must be 1 to 255 characters from a-z, A-Z, 0-9, \":\", \"_\" and \"-\" (DigitalOcean tag names)."
  }
}

variable "admin_user" {
  description = "Admin account cloud-init creates (key-only, passwordless sudo)."
  type        = string

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.admin_user)) && var.admin_user != "root"
    error_message = "admin_user must match ^[a-z_][a-z0-9_-]{0,31}$ and must not be root."
  }
}

variable "admin_ssh_public_key" {
  description = "The admin's OpenSSH public key line, put into the admin account's authorized_keys."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9@.-]+ [A-Za-z0-9+/]+={0,3}( [^\\r\\n]*)?$", trimspace(var.admin_ssh_public_key)))
    error_message = "admin_ssh_public_key must be one OpenSSH public key line: type, base64 key, optional comment."
  }
}

variable "allow_volume_deletion" {
  description = "false: the volumes are digitalocean_volume.protected (prevent_destroy); true: digitalocean_volume.unprotected."
  type        = bool
  default     = false
}

variable "hosts" {
  description = "The group's hosts, keyed by host name: droplet size and optional data volume (null: none)."
  type = map(object({
    size = string
    volume = optional(object({
      name    = string
      size_gb = number
    }))
  }))

  validation {
    condition     = alltrue([for name in keys(var.hosts) : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", name))])
    error_message = "Every hosts key must be a DNS label: 1 to 63 lower-case letters, digits or \"-\", not starting or ending with \"-\"."
  }

  validation {
    condition     = alltrue([for host in values(var.hosts) : can(regex("^[a-z0-9][a-z0-9-]{0,63}$", host.size))])
    error_message = "Every host's size must be a DigitalOcean size slug of lower-case letters, digits and \"-\", such as s-2vcpu-4gb."
  }

  validation {
    condition     = alltrue([for host in values(var.hosts) : host.volume == null || can(regex("^[a-z][a-z0-9-]{0,63}$", host.volume.name))])
    error_message = "Every volume name must start with a lower-case letter and hold at most 64 lower-case letters, digits or \"-\"."
  }

  validation {
    condition     = alltrue([for host in values(var.hosts) : host.volume == null || try(host.volume.size_gb == floor(host.volume.size_gb) && host.volume.size_gb >= 1 && host.volume.size_gb <= 16384, false)])
    error_message = "Every volume size_gb must be a whole number of GiB from 1 to 16384."
  }
}

variable "host_keys" {
  description = "Pre-generated SSH host keys per host name (ed25519 private key, public key line); every host of the group needs one."
  type = map(object({
    ed25519_private = string
    ed25519_public  = string
  }))
  sensitive = true

  validation {
    # The template puts the private key into a YAML literal block: only base64 lines may be in it.
    condition = alltrue([
      for key in values(var.host_keys) :
      can(regex("^-----BEGIN OPENSSH PRIVATE KEY-----\\n[A-Za-z0-9+/=\\n]+-----END OPENSSH PRIVATE KEY-----$", trimspace(replace(key.ed25519_private, "\r\n", "\n"))))
    ])
    error_message = "Every host_keys ed25519_private must be an OpenSSH private key: -----BEGIN OPENSSH PRIVATE KEY-----, base64 lines, -----END OPENSSH PRIVATE KEY-----."
  }

  validation {
    condition     = alltrue([for key in values(var.host_keys) : can(regex("^ssh-ed25519 [A-Za-z0-9+/]+={0,3}( [^\\r\\n]*)?$", trimspace(key.ed25519_public)))])
    error_message = "Every host_keys ed25519_public must be one line: ssh-ed25519, the base64 key and an optional comment."
  }
}
