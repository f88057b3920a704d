output "hosts" {
  description = "Every host keyed by host name: id (droplet id), name (droplet name, the FQDN), group, size, public_ipv4, private_ipv4 and volumes (list of { name, id, size_gb })."
  value       = merge([for group in module.droplet_group : group.hosts]...)
}

output "vpc_id" {
  description = "ID (UUID) of the environment's VPC."
  value       = module.network.vpc_id
}

output "firewall_ids" {
  description = "Cloud firewall IDs: \"base\" (SSH, ICMP, outbound; every host) and one per group that serves ports, keyed by group."
  value       = module.network.firewall_ids
}

output "project_id" {
  description = "ID (UUID) of the environment's DigitalOcean project."
  value       = module.project.id
}

output "ssh_key_id" {
  description = "ID of the DigitalOcean SSH key registered for the admin key."
  value       = digitalocean_ssh_key.admin.id
}
