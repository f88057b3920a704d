output "vpc_id" {
  description = "ID (UUID) of the environment's VPC."
  value       = digitalocean_vpc.this.id
}

output "firewall_ids" {
  description = "Firewall IDs: \"base\" for the environment-wide firewall, plus one per group that has one, keyed by group."
  value       = merge({ base = digitalocean_firewall.base.id }, { for group, firewall in digitalocean_firewall.group : group => firewall.id })
}
