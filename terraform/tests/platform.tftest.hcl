# Offline tests: the DigitalOcean provider is mocked (schema from the installed provider, no API).
# Run from a working directory that holds the root module (see ../README.md, "Tests").

mock_provider "digitalocean" {
  # Values the code converts or validates: droplet ids are numbers for volume attachments, and the
  # project module checks URNs.
  mock_resource "digitalocean_droplet" {
    defaults = {
      id                   = "1001"
      urn                  = "do:droplet:1001"
      ipv4_address         = "203.0.113.10"
      ipv4_address_private = "10.42.0.10"
    }
  }

  mock_resource "digitalocean_volume" {
    defaults = {
      id  = "0b9f1a4e-0000-4000-8000-000000000001"
      urn = "do:volume:0b9f1a4e-0000-4000-8000-000000000001"
    }
  }

  mock_resource "digitalocean_ssh_key" {
    defaults = {
      id = "4242"
    }
  }
}

variables {
  api_endpoint          = "http://127.0.0.1:9"
  environment           = "prod"
  region                = "fra1"
  image                 = "debian-12-x64"
  domain                = "prod.platform.internal"
  vpc_cidr              = "10.42.0.0/24"
  admin_cidrs           = ["203.0.113.0/24", "2001:db8::/48"]
  admin_user            = "ops"
  admin_ssh_public_key  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEnIDO2Qg2kQ53sEB8HoTPV2Fdwd1OQ+EYG/4M84fSKp admin"
  allow_volume_deletion = true

  hosts = {
    trino-coord = { group = "trino_coordinator", size = "s-4vcpu-8gb" }
    minio1      = { group = "minio", size = "s-2vcpu-4gb", volume = { name = "prod-minio1-data", size_gb = 100 } }
    minio2      = { group = "minio", size = "s-2vcpu-4gb", volume = { name = "prod-minio2-data", size_gb = 100 } }
  }

  group_ports = {
    minio             = [9001, 9000]
    trino_coordinator = [8443, 8080]
    postgres          = [5432]
  }
  # monitoring has no hosts here: its public port must not open anything.
  public_ports = {
    trino_coordinator = [8443]
    monitoring        = [3000]
  }
  # The base role's default: node_exporter, scraped by the monitoring hosts (none here).
  service_rules = [
    { name = "node_exporter", ports = [9100], source_groups = ["monitoring"] },
  ]

  host_keys = {
    trino-coord = {
      ed25519_private = "-----BEGIN OPENSSH PRIVATE KEY-----\nQUFBQQ==\n-----END OPENSSH PRIVATE KEY-----\n"
      ed25519_public  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDWdLMEzZxiO/Lt9UHmYVm5jow2snJ+wIrecNjQeKhLB trino-coord"
    }
    minio1 = {
      ed25519_private = "-----BEGIN OPENSSH PRIVATE KEY-----\nQkJCQg==\n-----END OPENSSH PRIVATE KEY-----\n"
      ed25519_public  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDWdLMEzZxiO/Lt9UHmYVm5jow2snJ+wIrecNjQeKhLC minio1"
    }
    minio2 = {
      ed25519_private = "-----BEGIN OPENSSH PRIVATE KEY-----\nQ0NDQw==\n-----END OPENSSH PRIVATE KEY-----\n"
      ed25519_public  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDWdLMEzZxiO/Lt9UHmYVm5jow2snJ+wIrecNjQeKhLD minio2"
    }
  }
}

run "root_outputs" {
  command = apply

  assert {
    condition     = toset(keys(output.hosts)) == toset(["trino-coord", "minio1", "minio2"])
    error_message = "output.hosts must hold every host, keyed by host name."
  }

  assert {
    condition     = output.hosts["minio1"].name == "minio1.prod.platform.internal" && output.hosts["minio1"].group == "minio"
    error_message = "A droplet is named <host>.<domain> and reports its group."
  }

  assert {
    condition     = length(output.hosts["minio1"].volumes) == 1 && output.hosts["minio1"].volumes[0].name == "prod-minio1-data" && output.hosts["minio1"].volumes[0].size_gb == 100
    error_message = "Every minio host has its one data volume."
  }

  assert {
    condition     = length(output.hosts["trino-coord"].volumes) == 0
    error_message = "A host without a volume in the spec has none."
  }

  assert {
    condition     = toset(keys(output.firewall_ids)) == toset(["base", "minio", "trino_coordinator"])
    error_message = "One base firewall plus one per group that has hosts and ports (monitoring has no hosts here)."
  }

  assert {
    condition     = output.ssh_key_id == "4242"
    error_message = "ssh_key_id is the DigitalOcean SSH key's id."
  }
}

run "droplet_group_protected_volumes" {
  command = plan

  module {
    source = "./modules/droplet_group"
  }

  variables {
    group                 = "minio"
    vpc_id                = "5a4e0000-0000-4000-8000-000000000000"
    ssh_key_ids           = ["4242"]
    tags                  = ["platform", "platform-prod", "platform-prod-minio"]
    allow_volume_deletion = false
    hosts = {
      minio1 = { size = "s-2vcpu-4gb", volume = { name = "prod-minio1-data", size_gb = 100 } }
      minio2 = { size = "s-2vcpu-4gb", volume = { name = "prod-minio2-data", size_gb = 100 } }
    }
  }

  assert {
    condition     = length(digitalocean_volume.protected) == 2 && length(digitalocean_volume.unprotected) == 0
    error_message = "With allow_volume_deletion = false every volume is digitalocean_volume.protected."
  }

  assert {
    condition     = length(digitalocean_volume_attachment.data) == 2
    error_message = "Every volume has its own attachment."
  }

  assert {
    condition     = alltrue([for volume in digitalocean_volume.protected : volume.initial_filesystem_type == null])
    error_message = "Volumes stay unformatted (Ansible makes the filesystem)."
  }

  assert {
    condition     = digitalocean_droplet.host["minio1"].tags == toset(["platform", "platform-prod", "platform-prod-minio"]) && digitalocean_droplet.host["minio1"].ipv6 == false
    error_message = "Droplets carry the platform, environment and group tags, without IPv6."
  }

  assert {
    condition     = startswith(nonsensitive(digitalocean_droplet.host["minio1"].user_data), "#cloud-config\nusers:\n  - name: \"ops\"\n")
    error_message = "user_data is a cloud-config that creates the admin user."
  }

  assert {
    condition     = strcontains(nonsensitive(digitalocean_droplet.host["minio1"].user_data), "  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    QkJCQg==\n    -----END OPENSSH PRIVATE KEY-----\n  ed25519_public: \"ssh-ed25519 ")
    error_message = "The host's private key is a literal block and its public key one line."
  }
}

run "droplet_group_unprotected_volumes" {
  command = plan

  module {
    source = "./modules/droplet_group"
  }

  variables {
    group                 = "minio"
    vpc_id                = "5a4e0000-0000-4000-8000-000000000000"
    ssh_key_ids           = ["4242"]
    allow_volume_deletion = true
    hosts = {
      minio1 = { size = "s-2vcpu-4gb", volume = { name = "prod-minio1-data", size_gb = 100 } }
    }
  }

  assert {
    condition     = length(digitalocean_volume.protected) == 0 && length(digitalocean_volume.unprotected) == 1
    error_message = "With allow_volume_deletion = true every volume is digitalocean_volume.unprotected."
  }
}

run "droplet_group_missing_host_key" {
  command = plan

  module {
    source = "./modules/droplet_group"
  }

  variables {
    group       = "apps"
    vpc_id      = "5a4e0000-0000-4000-8000-000000000000"
    ssh_key_ids = ["4242"]
    hosts = {
      apps1 = { size = "s-2vcpu-4gb" }
    }
  }

  expect_failures = [digitalocean_droplet.host]
}

run "firewall_matrix" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    environment_tag = "platform-prod"
    group_tags = {
      minio             = "platform-prod-minio"
      trino_coordinator = "platform-prod-trino_coordinator"
      apps              = "platform-prod-apps"
    }
  }

  assert {
    condition     = toset(keys(digitalocean_firewall.group)) == toset(["minio", "trino_coordinator"])
    error_message = "Only groups with hosts (a tag) and something to open get a firewall: apps has no ports (VPC or public), monitoring and postgres have no hosts."
  }

  assert {
    condition     = digitalocean_firewall.base.tags == toset(["platform-prod"]) && digitalocean_firewall.group["minio"].tags == toset(["platform-prod-minio"])
    error_message = "Firewalls attach by tag."
  }

  assert {
    condition = toset([for rule in digitalocean_firewall.base.inbound_rule : "${rule.protocol}/${coalesce(rule.port_range, "-")}/${join(",", sort(rule.source_addresses))}"]) == toset([
      "tcp/22/10.42.0.0/24,2001:db8::/48,203.0.113.0/24",
      "icmp/-/10.42.0.0/24",
    ])
    error_message = "Base firewall: SSH from admin_cidrs and the VPC, ICMP from the VPC, nothing else (node_exporter's 9100 neither: no monitoring hosts)."
  }

  assert {
    condition     = length([for rule in digitalocean_firewall.base.inbound_rule : rule if rule.port_range == "9100"]) == 0
    error_message = "A service rule whose source groups have no hosts opens nothing (not even from the VPC)."
  }

  assert {
    condition     = toset([for rule in digitalocean_firewall.group["minio"].inbound_rule : "${rule.port_range}/${join(",", sort(rule.source_addresses))}"]) == toset(["9000/10.42.0.0/24", "9001/10.42.0.0/24"])
    error_message = "MinIO's ports are open from the VPC only: a group without public_ports has no rule from anywhere."
  }

  assert {
    condition     = toset([for rule in digitalocean_firewall.group["trino_coordinator"].inbound_rule : "${rule.port_range}/${join(",", sort(rule.source_addresses))}"]) == toset(["8443/0.0.0.0/0,::/0", "8080/10.42.0.0/24", "8443/10.42.0.0/24"])
    error_message = "The coordinator serves its public port (Trino HTTPS, 8443) to the internet and its group ports to the VPC."
  }

  assert {
    condition     = length(digitalocean_firewall.base.outbound_rule) == 3
    error_message = "Outbound: tcp, udp and icmp to anywhere."
  }
}

run "firewall_service_rules_from_source_group_tags" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    environment_tag = "platform-prod"
    group_tags = {
      minio      = "platform-prod-minio"
      monitoring = "platform-prod-monitoring"
      apps       = "platform-prod-apps"
    }
    # node_exporter from monitoring; two more rules share 9187 (merged into one rule) and one admits
    # only postgres and trino_worker, which have no hosts here.
    service_rules = [
      { name = "node_exporter", ports = [9100], source_groups = ["monitoring"] },
      { name = "exporter_a", ports = [9187, 9187], source_groups = ["monitoring", "apps"] },
      { name = "exporter_b", ports = [9187], source_groups = ["apps", "minio", "postgres"] },
      { name = "nobody", ports = [7000], source_groups = ["postgres", "trino_worker"] },
    ]
  }

  assert {
    condition = toset([for rule in digitalocean_firewall.base.inbound_rule : "${rule.protocol}/${coalesce(rule.port_range, "-")}/${join(",", try(sort(rule.source_addresses), []))}/${join(",", try(sort(rule.source_tags), []))}"]) == toset([
      "tcp/22/10.42.0.0/24,2001:db8::/48,203.0.113.0/24/",
      "icmp/-/10.42.0.0/24/",
      "tcp/9100//platform-prod-monitoring",
      "tcp/9187//platform-prod-apps,platform-prod-minio,platform-prod-monitoring",
    ])
    error_message = "Base firewall: each service port from the tags of its source groups that have hosts (one rule per port, the rules' groups merged), no address; nothing for a port whose groups have no hosts."
  }

  assert {
    condition     = length(digitalocean_firewall.base.inbound_rule) == 4
    error_message = "One rule per distinct service port, plus SSH and ICMP."
  }
}

run "rejects_more_than_50_base_rules" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    environment_tag = "platform-prod"
    group_tags = {
      monitoring = "platform-prod-monitoring"
    }
    # 49 ports plus SSH and ICMP: 51 rules.
    service_rules = [
      { name = "many", ports = range(9100, 9149), source_groups = ["monitoring"] },
    ]
  }

  expect_failures = [digitalocean_firewall.base]
}

run "rejects_service_rule_of_unknown_group" {
  command = plan

  variables {
    service_rules = [
      { name = "node_exporter", ports = [9100], source_groups = ["prometheus"] },
    ]
  }

  expect_failures = [var.service_rules]
}

run "firewall_public_ports_only" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    environment_tag = "platform-prod"
    group_tags = {
      apps = "platform-prod-apps"
    }
    public_ports = {
      apps = [8888, 3070, 8888]
    }
  }

  assert {
    condition     = toset([for rule in digitalocean_firewall.group["apps"].inbound_rule : "${rule.port_range}/${join(",", sort(rule.source_addresses))}"]) == toset(["3070/0.0.0.0/0,::/0", "8888/0.0.0.0/0,::/0"])
    error_message = "A group with public ports and no group ports gets a firewall with one rule from anywhere per distinct public port."
  }
}

run "rejects_more_than_50_rules_per_group" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    environment_tag = "platform-prod"
    group_tags = {
      trino_coordinator = "platform-prod-trino_coordinator"
    }
    # 40 VPC ports and 11 public ones: each list is within 50, together they are 51 rules.
    group_ports = {
      trino_coordinator = range(8000, 8040)
    }
    public_ports = {
      trino_coordinator = range(9000, 9011)
    }
  }

  expect_failures = [digitalocean_firewall.group]
}

run "rejects_public_port_out_of_range" {
  command = plan

  variables {
    public_ports = {
      trino_coordinator = [70000]
    }
  }

  expect_failures = [var.public_ports]
}

run "rejects_public_vpc_cidr" {
  command = plan

  variables {
    vpc_cidr = "8.8.8.0/24"
  }

  expect_failures = [var.vpc_cidr]
}
