# The environment's DigitalOcean project and the assignment of its droplets and volumes to it.
# DigitalOcean puts new resources into the account's default project; digitalocean_project_resources
# moves them here, tracks only the URNs it was given, and hands them back to the default project
# when it is destroyed (so the project itself can then be deleted). A droplet's attached volumes
# must be in its project too, so both are listed.

resource "digitalocean_project" "this" {
  name        = var.name
  description = var.description
  purpose     = var.purpose
  environment = var.environment
}

resource "digitalocean_project_resources" "this" {
  project   = digitalocean_project.this.id
  resources = var.resources
}
