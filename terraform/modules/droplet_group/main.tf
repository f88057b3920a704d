# One host group: a droplet per host (for_each keyed by host name, so scaling never renames or
# replaces another host), an optional data volume per host and its attachment.

locals {
  volumes = { for name, host in var.hosts : name => host.volume if host.volume != null }

  # Bootstrap only: the admin account and the pre-generated host keys. The same inputs render the
  # same bytes, so a second plan shows no change (a changed user_data replaces the droplet).
  # The private key was validated to be base64 lines between BEGIN/END markers, so it is safe in a
  # YAML literal block; the "|" block gives it the one trailing newline OpenSSH expects. The other
  # strings are JSON-encoded, which YAML reads as double-quoted scalars (no folding, no injection).
  user_data = {
    for name, host in var.hosts : name => templatefile("${path.module}/cloud-config.yaml.tftpl", {
      admin_user           = var.admin_user
      admin_ssh_public_key = trimspace(var.admin_ssh_public_key)
      ed25519_private      = trimspace(replace(try(var.host_keys[name].ed25519_private, ""), "\r\n", "\n"))
      ed25519_public       = trimspace(try(var.host_keys[name].ed25519_public, ""))
    })
  }

  volume_ids = merge(
    { for name, volume in digitalocean_volume.protected : name => volume.id },
    { for name, volume in digitalocean_volume.unprotected : name => volume.id },
  )
  volume_urns = merge(
    { for name, volume in digitalocean_volume.protected : name => volume.urn },
    { for name, volume in digitalocean_volume.unprotected : name => volume.urn },
  )
}

resource "digitalocean_droplet" "host" {
  for_each = var.hosts

  name       = "${each.key}.${var.domain}"
  region     = var.region
  size       = each.value.size
  image      = var.image
  vpc_uuid   = var.vpc_id
  ssh_keys   = var.ssh_key_ids
  ipv6       = false
  monitoring = true
  tags       = var.tags
  user_data  = local.user_data[each.key]

  lifecycle {
    # First boot only: afterwards Ansible's base role owns the admin account and its keys, so a
    # rotated admin key must not replace every droplet (user_data and ssh_keys force a new one).
    ignore_changes = [user_data, ssh_keys]

    precondition {
      condition     = contains(nonsensitive(keys(var.host_keys)), each.key)
      error_message = "Host ${each.key} (group ${var.group}) has no entry in host_keys: every host needs its pre-generated SSH host keys."
    }

    precondition {
      condition     = length("${each.key}.${var.domain}") <= 253
      error_message = "Droplet name ${each.key}.${var.domain} is longer than 253 characters: shorten the host name or the domain."
    }
  }
}

# prevent_destroy cannot depend on a variable, so the volumes live in one of two resources,
# selected by allow_volume_deletion. platform-ctl moves their state between the two when the flag
# changes, and removes the protected ones from state before a destroy that keeps data. Do not
# rename these resources.
resource "digitalocean_volume" "protected" {
  for_each = var.allow_volume_deletion ? {} : local.volumes

  name   = each.value.name
  region = var.region
  size   = each.value.size_gb
  tags   = var.tags
  # No initial_filesystem_type: the volume stays unformatted; Ansible makes the XFS filesystem.

  lifecycle {
    prevent_destroy = true
  }
}

resource "digitalocean_volume" "unprotected" {
  for_each = var.allow_volume_deletion ? local.volumes : {}

  name   = each.value.name
  region = var.region
  size   = each.value.size_gb
  tags   = var.tags
}

# Attached separately (not via the droplet's volume_ids), so a replaced droplet gets its volume
# back and the volume itself is never replaced with it.
resource "digitalocean_volume_attachment" "data" {
  for_each = local.volumes

  droplet_id = digitalocean_droplet.host[each.key].id
  volume_id  = local.volume_ids[each.key]
}
