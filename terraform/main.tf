# Root module: one platform environment on DigitalOcean. platform-ctl runs it from a per-environment
# working directory that holds symlinks to these files plus a generated backend.tf and
# platform.auto.tfvars.json, so module sources stay relative (./modules/...).

provider "digitalocean" {
  # The token comes from DIGITALOCEAN_TOKEN in the environment, never from a variable.
  api_endpoint = var.api_endpoint
}

locals {
  environment_tag = "platform-${var.environment}"

  # Groups that have at least one host; a group without hosts gets no tag, droplets or firewall.
  groups = toset([for host in values(var.hosts) : host.group])
}

# The admin key, registered once per environment. Droplets list it in ssh_keys as well: DigitalOcean
# then puts it into root's authorized_keys, which cloud-init's disable_root turns into a refusal
# until Ansible disables root login altogether.
resource "digitalocean_ssh_key" "admin" {
  name       = "platform-${var.environment}-admin"
  public_key = trimspace(var.admin_ssh_public_key)
}

# Firewalls are attached by tag, and DigitalOcean only attaches a firewall to a tag that exists, so
# the environment's own tags are resources that droplets and firewalls both depend on. The shared
# "platform" tag is not managed here: destroying one environment would untag every other one.
resource "digitalocean_tag" "environment" {
  name = local.environment_tag
}

resource "digitalocean_tag" "group" {
  for_each = local.groups

  name = "${local.environment_tag}-${each.key}"
}

module "network" {
  source = "./modules/network"

  environment     = var.environment
  region          = var.region
  vpc_cidr        = var.vpc_cidr
  admin_cidrs     = var.admin_cidrs
  environment_tag = digitalocean_tag.environment.name
  group_tags      = { for group, tag in digitalocean_tag.group : group => tag.name }
  group_ports     = var.group_ports
  public_ports    = var.public_ports
  service_rules   = var.service_rules
}

module "droplet_group" {
  source   = "./modules/droplet_group"
  for_each = local.groups

  environment           = var.environment
  group                 = each.key
  region                = var.region
  image                 = var.image
  domain                = var.domain
  vpc_id                = module.network.vpc_id
  ssh_key_ids           = [digitalocean_ssh_key.admin.id]
  tags                  = ["platform", digitalocean_tag.environment.name, digitalocean_tag.group[each.key].name]
  admin_user            = var.admin_user
  admin_ssh_public_key  = var.admin_ssh_public_key
  allow_volume_deletion = var.allow_volume_deletion

  hosts = {
    for name, host in var.hosts : name => {
      size   = host.size
      volume = host.volume
    } if host.group == each.key
  }

  # Only this group's keys; a missing one fails the group's precondition with the host's name.
  host_keys = { for name, key in var.host_keys : name => key if try(var.hosts[name].group, "") == each.key }
}

module "project" {
  source = "./modules/project"

  name        = "platform-${var.environment}"
  description = "Data platform environment ${var.environment} (managed by platform-ctl)"
  resources = sort(concat(
    flatten([for group in module.droplet_group : group.droplet_urns]),
    flatten([for group in module.droplet_group : group.volume_urns]),
  ))
}
