# Root variables. platform-ctl writes every one of them into platform.auto.tfvars.json from the
# environment spec; the API token is never a variable (the provider reads DIGITALOCEAN_TOKEN).

variable "api_endpoint" {
  description = "DigitalOcean API base URL: scheme and host (and port), no path. Tests point it at an emulator."
  type        = string
  default     = "https://api.digitalocean.com"

  validation {
    # godo resolves some request paths against the base URL and others from the origin root, so a
    # path prefix would split the API across two places: only "/" is accepted as a path.
    condition     = can(regex("^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$", var.api_endpoint)) || can(regex("^https?://\\[[0-9A-Fa-f:.]+\\](:[0-9]{1,5})?/?$", var.api_endpoint))
    error_message = "api_endpoint must be http:// or https:// followed by a host (optionally :port) and nothing but an optional trailing \"/\", such as https://api.digitalocean.com or http://127.0.0.1:8080."
  }
}

variable "environment" {
  description = "Environment name; it names the VPC, firewalls, tags, SSH key and project."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must match ^[a-z][a-z0-9-]{0,19}$: a lower-case letter, then up to 19 lower-case letters, digits or \"-\"."
  }
}

variable "region" {
  description = "DigitalOcean region slug for the VPC, droplets and volumes."
  type        = string

  validation {
    condition     = contains(["nyc1", "nyc3", "sfo2", "sfo3", "ams3", "sgp1", "lon1", "fra1", "tor1", "blr1", "syd1", "atl1"], var.region)
    error_message = "region must be one of: nyc1, nyc3, sfo2, sfo3, ams3, sgp1, lon1, fra1, tor1, blr1, syd1, atl1."
  }
}

variable "image" {
  description = "Droplet image: a DigitalOcean image slug or a numeric image id. Changing it replaces every droplet."
  type        = string
  default     = "debian-12-x64"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{0,63}$", var.image))
    error_message = "image must be an image slug of lower-case letters, digits, \".\" and \"-\" (such as debian-12-x64) or a numeric image id."
  }
}

variable "domain" {
  description = "DNS domain of the environment: a host's FQDN, which is also its droplet name, is <host>.<domain>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$", var.domain)) && length(var.domain) <= 189
    error_message = "domain must be dot-separated labels of lower-case letters, digits and \"-\" (no leading or trailing \"-\", at most 63 characters each), at most 189 characters in all, such as prod.platform.internal."
  }
}

variable "vpc_cidr" {
  description = "IPv4 range of the environment's VPC: an RFC 1918 network from /16 to /28."
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

  validation {
    # A /16../28 overlaps an RFC 1918 block exactly when it lies inside it: compare the network
    # addresses masked to the shorter prefix.
    condition = try(anytrue([
      for block in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] :
      cidrhost("${split("/", var.vpc_cidr)[0]}/${split("/", block)[1]}", 0) == split("/", block)[0]
    ]), false)
    error_message = "vpc_cidr must lie inside an RFC 1918 private range: 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16."
  }

  validation {
    # Ranges DigitalOcean keeps for itself (DOKS and internal use); a VPC may not overlap them.
    condition = try(alltrue([
      for reserved in ["10.229.0.0/16", "10.244.0.0/16", "10.245.0.0/16", "10.246.0.0/24"] :
      cidrhost("${split("/", var.vpc_cidr)[0]}/${min(tonumber(split("/", var.vpc_cidr)[1]), tonumber(split("/", reserved)[1]))}", 0) !=
      cidrhost("${split("/", reserved)[0]}/${min(tonumber(split("/", var.vpc_cidr)[1]), tonumber(split("/", reserved)[1]))}", 0)
    ]), false)
    error_message = "vpc_cidr must not overlap the ranges DigitalOcean reserves: 10.229.0.0/16, 10.244.0.0/16, 10.245.0.0/16, 10.246.0.0/24."
  }
}

variable "admin_cidrs" {
  description = "IPv4 or IPv6 networks allowed to reach SSH (tcp 22) from outside the VPC."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for cidr in var.admin_cidrs : try(
        can(regex("^[0-9A-Fa-f:.]+/[0-9]{1,3}$", cidr)) &&
        cidrhost(cidr, 0) == cidrhost("${split("/", cidr)[0]}/${length(regexall(":", cidr)) > 0 ? 128 : 32}", 0),
        false
      )
    ])
    error_message = "Every admin_cidrs entry must be an IPv4 or IPv6 network address/prefix with no host bits set, such as 203.0.113.0/24, 198.51.100.7/32 or 2001:db8::/48."
  }
}

variable "admin_user" {
  description = "Name of the admin account cloud-init creates on every host (key-only SSH, passwordless sudo)."
  type        = string

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.admin_user))
    error_message = "admin_user must match ^[a-z_][a-z0-9_-]{0,31}$: a lower-case letter or \"_\", then up to 31 lower-case letters, digits, \"_\" or \"-\"."
  }

  validation {
    condition = !contains([
      "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
      "www-data", "backup", "list", "irc", "nobody", "sshd", "messagebus", "admin", "debian", "postgres",
      "minio", "trino", "prometheus", "grafana", "node_exporter", "alertmanager", "jupyter", "dagster",
      "docker",
    ], var.admin_user)
    error_message = "admin_user must not be root or an account the OS or the roles own: root, daemon, bin, sys, sync, games, man, lp, mail, news, uucp, proxy, www-data, backup, list, irc, nobody, sshd, messagebus, admin, debian, postgres, minio, trino, prometheus, grafana, node_exporter, alertmanager, jupyter, dagster, docker."
  }
}

variable "admin_ssh_public_key" {
  description = "The admin's OpenSSH public key, one line; it is registered as the environment's DigitalOcean SSH key too."
  type        = string

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh\\.com|sk-ecdsa-sha2-nistp256@openssh\\.com) [A-Za-z0-9+/]+={0,3}( [^\\r\\n]*)?$", trimspace(var.admin_ssh_public_key)))
    error_message = "admin_ssh_public_key must be one OpenSSH public key line: a type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com), the base64 key and an optional comment."
  }
}

variable "allow_volume_deletion" {
  description = "false: data volumes carry lifecycle prevent_destroy (digitalocean_volume.protected); true: they may be destroyed (digitalocean_volume.unprotected)."
  type        = bool
  default     = false
}

variable "hosts" {
  description = "Every host, keyed by host name: its group, droplet size and optional data volume (null or absent: none)."
  type = map(object({
    group = string
    size  = string
    volume = optional(object({
      name    = string
      size_gb = number
    }))
  }))

  validation {
    condition     = length(var.hosts) > 0
    error_message = "hosts must hold at least one host."
  }

  validation {
    condition     = alltrue([for name in keys(var.hosts) : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", name))])
    error_message = "Every hosts key must be a DNS label: 1 to 63 lower-case letters, digits or \"-\", not starting or ending with \"-\" (such as minio1)."
  }

  validation {
    condition     = alltrue([for host in values(var.hosts) : contains(["trino_coordinator", "trino_worker", "minio", "postgres", "monitoring", "apps"], host.group)])
    error_message = "Every host's group must be one of: trino_coordinator, trino_worker, minio, postgres, monitoring, apps."
  }

  validation {
    condition     = alltrue([for host in values(var.hosts) : can(regex("^[a-z0-9][a-z0-9-]{0,63}$", host.size))])
    error_message = "Every host's size must be a DigitalOcean size slug of lower-case letters, digits and \"-\", such as s-2vcpu-4gb."
  }

  validation {
    condition     = alltrue([for host in values(var.hosts) : host.volume == null || can(regex("^[a-z][a-z0-9-]{0,63}$", host.volume.name))])
    error_message = "Every volume name must start with a lower-case letter and hold at most 64 lower-case letters, digits or \"-\" (such as prod-minio1-data)."
  }

  validation {
    condition     = alltrue([for host in values(var.hosts) : host.volume == null || try(host.volume.size_gb == floor(host.volume.size_gb) && host.volume.size_gb >= 1 && host.volume.size_gb <= 16384, false)])
    error_message = "Every volume size_gb must be a whole number of GiB from 1 to 16384."
  }

  validation {
    condition     = length(distinct([for host in values(var.hosts) : host.volume.name if host.volume != null])) == length([for host in values(var.hosts) : host.volume.name if host.volume != null])
    error_message = "Volume names must be unique across hosts."
  }
}

variable "group_ports" {
  description = "TCP ports each group serves inside the VPC, keyed by group; they are opened from vpc_cidr to that group's tag only."
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
  description = "TCP ports each group serves to users, keyed by group: opened from the whole internet (0.0.0.0/0 and ::/0) to that group's tag only. The base role's base_firewall_public_ports, so the host firewall opens the same ports."
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
  description = "TCP ports every host serves to the hosts of some groups only (the base role's base_firewall_service_rules, such as node_exporter's 9100 for the monitoring hosts): each port is opened on every droplet from the tags of the source groups that have hosts; a rule none of whose groups has hosts opens nothing."
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

variable "host_keys" {
  description = "Pre-generated SSH host keys per host name (OpenSSH ed25519 private key and public key line); cloud-init installs them so known_hosts is known before first boot."
  type = map(object({
    ed25519_private = string
    ed25519_public  = string
  }))
  sensitive = true

  validation {
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
