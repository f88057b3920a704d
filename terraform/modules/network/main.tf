# The environment's VPC and its cloud firewalls. Firewalls attach by tag (never by droplet id), so
# a droplet that is added or replaced is covered as soon as it carries its tags. DigitalOcean cloud
# firewalls apply to the VPC interface too and are stateful: replies to allowed traffic pass.
#
# Firewall matrix (a droplet gets the union of the firewalls its tags select):
#   base (tag platform-<env>):        in  tcp 22 from admin_cidrs + vpc_cidr; icmp from vpc_cidr
#                                      in  tcp <port> from the tags of the rule's source groups that have
#                                          hosts, for each port of service_rules (Ansible base role
#                                          base_firewall_service_rules, e.g. node_exporter 9100 from
#                                          the monitoring hosts); nothing for a port without such a group
#                                      out tcp, udp all ports and icmp to anywhere
#   <group> (tag platform-<env>-<group>, only groups with hosts and something to open):
#                                      in  tcp <port> from vpc_cidr for each of group_ports[group]
#                                      in  tcp <port> from 0.0.0.0/0 and ::/0 for each of public_ports[group]
#                                          (the user-facing ports; the host firewall, Ansible base role
#                                          base_firewall_public_ports, opens the same ones)

locals {
  anywhere = ["0.0.0.0/0", "::/0"]

  # Written the way the API returns them (cidrhost gives the canonical, lower-case address), so an
  # upper-case or zero-padded IPv6 network in the spec does not show up as a change on every plan.
  ssh_sources = sort(distinct([
    for cidr in concat(var.admin_cidrs, [var.vpc_cidr]) : "${cidrhost(cidr, 0)}/${split("/", cidr)[1]}"
  ]))

  # Per group: its VPC ports and its public (user-facing) ports, each deduplicated and sorted
  # numerically (zero-padded for sort, which sorts strings), so the rule set is the same whatever
  # order the spec lists them in.
  group_rules = {
    for group in sort(keys(var.group_tags)) : group => {
      tag          = var.group_tags[group]
      vpc_ports    = [for port in sort(distinct([for p in lookup(var.group_ports, group, []) : format("%05d", p)])) : tonumber(port)]
      public_ports = [for port in sort(distinct([for p in lookup(var.public_ports, group, []) : format("%05d", p)])) : tonumber(port)]
    }
    if length(lookup(var.group_ports, group, [])) + length(lookup(var.public_ports, group, [])) > 0
  }

  # Service rules, per port: the tags of the source groups that have hosts (in group_tags), merged
  # over every rule that opens the port, deduplicated and sorted. A port none of whose groups has
  # hosts gets no rule (a rule needs a source, and falling back to the VPC would admit what
  # nftables refuses). Keys are zero-padded ports, so the rules come out in numeric
  # order; the provider sends and reads rules and source_tags as sets, so neither order nor
  # duplicates show up as a change.
  service_sources = {
    for port, tags in {
      for pair in flatten([
        for rule in var.service_rules : [
          for port in rule.ports : [
            for group in rule.source_groups : { port = format("%05d", port), tag = var.group_tags[group] }
            if contains(keys(var.group_tags), group)
          ]
        ]
      ]) : pair.port => pair.tag...
    } : port => sort(distinct(tags))
  }

  # SSH and ICMP: the base firewall's inbound rules besides the service rules.
  base_fixed_inbound_rules = 2
}

resource "digitalocean_vpc" "this" {
  name        = "platform-${var.environment}"
  description = "platform-ctl environment ${var.environment}"
  region      = var.region
  ip_range    = var.vpc_cidr
}

resource "digitalocean_firewall" "base" {
  name = "platform-${var.environment}-base"
  tags = [var.environment_tag]

  inbound_rule {
    protocol         = "tcp"
    port_range       = "22"
    source_addresses = local.ssh_sources
  }

  inbound_rule {
    protocol         = "icmp"
    source_addresses = [var.vpc_cidr]
  }

  # Served by every host to the hosts of a few groups (node_exporter to Prometheus on the monitoring
  # hosts): admitted by the source groups' tags, so a source droplet that is added or replaced is
  # covered at once. Each host's nftables admits the same groups by their private addresses.
  dynamic "inbound_rule" {
    for_each = local.service_sources
    content {
      protocol    = "tcp"
      port_range  = tostring(tonumber(inbound_rule.key))
      source_tags = inbound_rule.value
    }
  }

  # Outbound is open on purpose: hosts install OS packages and updates (apt), fetch artifacts in
  # URL mode, resolve names and sync time (udp 53/123) and talk to each other's services across
  # the VPC (the receiving side's inbound rules decide what is reachable). A cloud firewall without
  # outbound rules would drop all of that. Each host's own firewall (Ansible base role) is
  # default-deny inbound on top of this.
  outbound_rule {
    protocol              = "tcp"
    port_range            = "1-65535"
    destination_addresses = local.anywhere
  }

  outbound_rule {
    protocol              = "udp"
    port_range            = "1-65535"
    destination_addresses = local.anywhere
  }

  outbound_rule {
    protocol              = "icmp"
    destination_addresses = local.anywhere
  }

  lifecycle {
    precondition {
      condition     = local.base_fixed_inbound_rules + length(local.service_sources) <= 50
      error_message = "The base firewall needs ${local.base_fixed_inbound_rules + length(local.service_sources)} inbound rules (SSH, ICMP and one for each of the ${length(local.service_sources)} service_rules ports whose source groups have hosts), but a DigitalOcean firewall holds at most 50: open fewer ports in base_firewall_service_rules."
    }
  }
}

resource "digitalocean_firewall" "group" {
  #checkov:skip=CKV_DIO_4: only the user-facing ports in public_ports (e.g. Trino HTTPS 8443 on the coordinator) are open to 0.0.0.0/0 and ::/0, by design and on their group's tag only; every other rule here is VPC-only.
  for_each = local.group_rules

  # Firewall names allow letters, digits, "." and "-" only.
  name = "platform-${var.environment}-${replace(each.key, "_", "-")}"
  tags = [each.value.tag]

  dynamic "inbound_rule" {
    for_each = each.value.vpc_ports
    content {
      protocol         = "tcp"
      port_range       = tostring(inbound_rule.value)
      source_addresses = [var.vpc_cidr]
    }
  }

  dynamic "inbound_rule" {
    for_each = each.value.public_ports
    content {
      protocol         = "tcp"
      port_range       = tostring(inbound_rule.value)
      source_addresses = local.anywhere
    }
  }

  lifecycle {
    # Checked here rather than in a variable validation: it spans group_ports and public_ports.
    precondition {
      condition     = length(each.value.vpc_ports) + length(each.value.public_ports) <= 50
      error_message = "Group ${each.key} needs ${length(each.value.vpc_ports) + length(each.value.public_ports)} inbound rules (${length(each.value.vpc_ports)} group_ports from the VPC, ${length(each.value.public_ports)} public_ports from anywhere), but a DigitalOcean firewall holds at most 50: open fewer ports."
    }
  }
}
