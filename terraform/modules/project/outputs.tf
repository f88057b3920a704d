output "id" {
  description = "ID (UUID) of the project."
  value       = digitalocean_project.this.id
}

output "resources" {
  description = "URNs assigned to the project by this module."
  value       = digitalocean_project_resources.this.resources
}
