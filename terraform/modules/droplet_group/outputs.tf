output "hosts" {
  description = "The group's hosts keyed by host name: droplet id and name, group, size, public and private IPv4, and data volumes (name, id, size_gb)."
  value = {
    for name, droplet in digitalocean_droplet.host : name => {
      id           = droplet.id
      name         = droplet.name
      group        = var.group
      size         = droplet.size
      public_ipv4  = droplet.ipv4_address
      private_ipv4 = droplet.ipv4_address_private
      volumes = [
        for volume_name, volume in local.volumes : {
          name    = volume.name
          id      = local.volume_ids[volume_name]
          size_gb = volume.size_gb
        } if volume_name == name
      ]
    }
  }
}

output "droplet_urns" {
  description = "URNs of the group's droplets (for project assignment), in host name order."
  value       = [for name in sort(keys(digitalocean_droplet.host)) : digitalocean_droplet.host[name].urn]
}

output "volume_urns" {
  description = "URNs of the group's data volumes (for project assignment), in host name order."
  value       = [for name in sort(keys(local.volume_urns)) : local.volume_urns[name]]
}

output "volume_attachment_ids" {
  description = "IDs of the volume attachments, keyed by host name."
  value       = { for name, attachment in digitalocean_volume_attachment.data : name => attachment.id }
}
