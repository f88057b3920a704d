"""The DigitalOcean API emulator, in process and over HTTP (urllib), without Docker."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from do_emulator.materialize import cloud_init_script
from do_emulator.server import Emulator

TOKEN = "unit-token"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMoynRG5wJFMMO/jhRc0EHA6xwwMEkcijuocJG77sXpq user@test"
PUBKEY_MD5 = "c5:7f:ec:6c:05:08:d3:54:ae:27:dc:ff:7c:9e:74:ba"  # ssh-keygen -l -E md5


class Client:
    def __init__(self, url: str, token: str | None = TOKEN) -> None:
        self.url = url
        self.token = token

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        use = token if token is not None else self.token
        if use is not None:
            headers["Authorization"] = f"Bearer {use}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                text = answer.read()
                return answer.status, {k.lower(): v for k, v in answer.headers.items()}, (
                    json.loads(text) if text else None)
        except urllib.error.HTTPError as err:
            text = err.read()
            return err.code, {k.lower(): v for k, v in err.headers.items()}, json.loads(text) if text else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, _, payload = self.call(method, path, body)
        assert 200 <= status < 300, (status, payload)
        return payload


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    running = Emulator(tokens=[TOKEN, "other-token"])
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(emulator: Emulator) -> Client:
    return Client(emulator.url)


def droplet_body(name: str = "web1", **extra: Any) -> dict[str, Any]:
    return {"name": name, "region": "fra1", "size": "s-1vcpu-1gb", "image": "debian-12-x64", "ssh_keys": None,
            "backups": False, "ipv6": False, "private_networking": False, "monitoring": True, "tags": [], **extra}


def make_droplet(api: Client, name: str = "web1", **extra: Any) -> dict[str, Any]:
    created = api.ok("POST", "/v2/droplets", droplet_body(name, **extra))["droplet"]
    return dict(api.ok("GET", f"/v2/droplets/{created['id']}")["droplet"])


def make_volume(api: Client, name: str = "data1", size: int = 10) -> dict[str, Any]:
    body = {"region": "fra1", "name": name, "description": "", "size_gigabytes": size, "snapshot_id": "",
            "filesystem_type": "", "filesystem_label": "", "tags": []}
    return dict(api.ok("POST", "/v2/volumes", body)["volume"])


# -- cross-cutting ---------------------------------------------------------------------------------


def test_a_missing_or_unknown_token_is_401_in_digitaloceans_error_shape(api: Client):
    for token in ("", "wrong"):
        status, headers, body = api.call("GET", "/v2/account", token=token)
        assert status == 401
        assert body["id"] == "unauthorized"
        assert body["message"] == "Unable to authenticate you."
        assert body["request_id"] == headers["x-request-id"]
    status, _, body = api.call("GET", "/v2/account", token="other-token")
    assert status == 200
    assert body["account"]["droplet_limit"] == 25


def test_every_answer_carries_rate_limit_headers_and_the_limiter_is_per_token():
    limited = Emulator(tokens=["a", "b"], rate_limit=3)
    limited.start()
    try:
        api = Client(limited.url, token="a")
        remaining = []
        for _ in range(3):
            status, headers, _ = api.call("GET", "/v2/sizes")
            assert status == 200
            assert headers["ratelimit-limit"] == "3"
            assert int(headers["ratelimit-reset"]) > time.time()
            remaining.append(int(headers["ratelimit-remaining"]))
        assert remaining == [2, 1, 0]
        status, headers, body = api.call("GET", "/v2/sizes")
        assert status == 429
        assert body["id"] == "too_many_requests"
        assert body["message"] == "API rate limit exceeded."
        assert 1 <= int(headers["retry-after"]) <= 60
        assert api.call("GET", "/v2/sizes", token="b")[0] == 200
    finally:
        limited.stop()


def test_an_injected_429_answers_times_times_with_retry_after_then_stops(api: Client, emulator: Emulator):
    fault = {"method": "POST", "path": "^/v2/droplets$", "status": 429, "times": 2, "retry_after": 1,
             "message": "API rate limit exceeded."}
    status, _, _ = api.call("POST", "/_emulator/faults", fault, token="")
    assert status == 201
    for _ in range(2):
        status, headers, body = api.call("POST", "/v2/droplets", droplet_body())
        assert (status, headers["retry-after"], body["id"]) == (429, "1", "too_many_requests")
        assert body["message"] == "API rate limit exceeded."
    assert api.call("GET", "/v2/droplets")[0] == 200, "only POST matches"
    assert api.call("POST", "/v2/droplets", droplet_body())[0] == 202
    log = api.ok("GET", "/_emulator/requests")
    assert [r["status"] for r in log if r["method"] == "POST" and r["path"] == "/v2/droplets"] == [429, 429, 202]
    assert api.call("DELETE", "/_emulator/faults")[0] == 204


def test_paths_resolve_with_or_without_a_leading_slash_or_a_prefix(api: Client):
    assert api.ok("GET", "/v2/regions")["meta"]["total"] >= 12
    assert api.ok("GET", "/prefix/v2/regions")["meta"]["total"] >= 12
    assert api.call("GET", "/v2/nothing-here")[0] == 404


def test_lists_are_paginated_with_absolute_links(api: Client, emulator: Emulator):
    for i in range(5):
        make_droplet(api, f"node{i}", tags=["pool"])
    make_droplet(api, "other")
    first = api.ok("GET", "/v2/droplets?tag_name=pool&per_page=2")
    assert first["meta"]["total"] == 5
    assert [d["name"] for d in first["droplets"]] == ["node0", "node1"]
    pages = first["links"]["pages"]
    assert pages["next"].startswith(emulator.url + "/v2/droplets?")
    assert "tag_name=pool" in pages["next"]
    assert "prev" not in pages
    last = api.ok("GET", pages["last"].removeprefix(emulator.url))
    assert [d["name"] for d in last["droplets"]] == ["node4"]
    assert "next" not in last["links"]["pages"]
    assert last["links"]["pages"]["prev"].endswith("page=2&per_page=2")
    everything = api.ok("GET", "/v2/droplets?per_page=200")
    assert everything["links"] == {}
    assert everything["meta"]["total"] == 6


# -- droplets --------------------------------------------------------------------------------------


def test_droplet_create_turns_active_then_delete_gives_404(api: Client):
    status, _, body = api.call("POST", "/v2/droplets", droplet_body("web1.example.internal", tags=["web"]))
    assert status == 202
    droplet = body["droplet"]
    assert (droplet["status"], droplet["locked"]) == ("new", False)
    action_id = body["links"]["actions"][0]["id"]
    active = api.ok("GET", f"/v2/droplets/{droplet['id']}")["droplet"]
    assert active["status"] == "active"
    assert isinstance(active["id"], int)
    assert isinstance(active["memory"], int)
    assert active["size"]["slug"] == "s-1vcpu-1gb"
    assert isinstance(active["size"]["price_monthly"], float)
    assert active["region"]["slug"] == "fra1"
    assert active["features"] == ["monitoring"]
    v4 = active["networks"]["v4"]
    assert {n["type"] for n in v4} == {"public", "private"}
    assert len({n["ip_address"] for n in v4}) == 1, "one network: the VPC address is both"
    assert isinstance(v4[0]["netmask"], str)
    vpc = api.ok("GET", f"/v2/vpcs/{active['vpc_uuid']}")["vpc"]
    assert vpc["default"] is True
    assert vpc["created_at"].endswith("Z")
    action = api.ok("GET", f"/v2/actions/{action_id}")["action"]
    assert action["status"] == "completed"
    assert action["completed_at"]
    assert api.call("DELETE", f"/v2/droplets/{droplet['id']}")[0] == 204
    status, _, body = api.call("GET", f"/v2/droplets/{droplet['id']}")
    assert (status, body["id"]) == (404, "not_found")


@pytest.mark.parametrize(("change", "message"), [
    ({"size": "s-3vcpu-1gb"}, "You specified an invalid size for Droplet creation."),
    ({"region": "mars1"}, "You specified an invalid region for Droplet creation."),
    ({"image": "windows-11"}, "You specified an invalid image for Droplet creation."),
    ({"name": "bad_name!"}, "Only valid hostname characters are allowed."),
    ({"vpc_uuid": "nope"}, "VPC nope was not found"),
])
def test_invalid_droplet_input_is_422(api: Client, change: dict[str, Any], message: str):
    status, _, body = api.call("POST", "/v2/droplets", droplet_body(**change))
    assert status == 422
    assert body["id"] == "unprocessable_entity"
    assert message in body["message"]


def test_the_droplet_limit_is_enforced():
    small = Emulator(tokens=[TOKEN], droplet_limit=2)
    small.start()
    try:
        api = Client(small.url)
        make_droplet(api, "a")
        make_droplet(api, "b")
        status, _, body = api.call("POST", "/v2/droplets", droplet_body("c"))
        assert status == 422
        assert body["message"] == "creating this/these droplet(s) will exceed your droplet limit"
    finally:
        small.stop()


def test_droplet_actions_change_what_a_get_shows(api: Client):
    droplet = make_droplet(api)
    path = f"/v2/droplets/{droplet['id']}"
    action = api.ok("POST", f"{path}/actions", {"type": "power_off"})["action"]
    assert action["type"] == "power_off"
    assert action["completed_at"]
    assert api.ok("GET", path)["droplet"]["status"] == "off"
    status, _, body = api.call("POST", f"{path}/actions", {"type": "power_off"})
    assert status == 422
    assert "Droplet is already powered off" in body["message"]
    resize = api.ok("POST", f"{path}/actions", {"type": "resize", "size": "s-2vcpu-4gb", "disk": True})["action"]
    assert api.ok("GET", f"/v2/actions/{resize['id']}")["action"]["completed_at"]
    assert api.ok("GET", f"{path}/actions/{resize['id']}")["action"]["type"] == "resize"
    api.ok("POST", f"{path}/actions", {"type": "power_on"})
    api.ok("POST", f"{path}/actions", {"type": "rename", "name": "renamed"})
    api.ok("POST", f"{path}/actions", {"type": "enable_ipv6"})
    api.ok("POST", f"{path}/actions", {"type": "enable_backups"})
    now = api.ok("GET", path)["droplet"]
    assert (now["status"], now["name"], now["size"]["slug"], now["disk"]) == ("active", "renamed", "s-2vcpu-4gb", 80)
    assert {"ipv6", "backups"} <= set(now["features"])
    assert now["networks"]["v6"][0]["type"] == "public"
    assert isinstance(now["networks"]["v6"][0]["netmask"], int)


# -- volumes ---------------------------------------------------------------------------------------


def test_attach_and_detach_update_both_sides(api: Client):
    droplet = make_droplet(api)
    volume = make_volume(api)
    assert volume["created_at"].endswith("Z")
    assert volume["droplet_ids"] == []
    action = api.ok("POST", f"/v2/volumes/{volume['id']}/actions", {"type": "attach", "droplet_id": droplet["id"]})
    assert api.ok("GET", f"/v2/actions/{action['action']['id']}")["action"]["completed_at"]
    assert api.ok("GET", f"/v2/volumes/{volume['id']}")["volume"]["droplet_ids"] == [droplet["id"]]
    assert api.ok("GET", f"/v2/droplets/{droplet['id']}")["droplet"]["volume_ids"] == [volume["id"]]
    status, _, body = api.call("DELETE", f"/v2/volumes/{volume['id']}")
    assert status == 409
    assert body["id"] == "conflict"
    api.ok("POST", f"/v2/volumes/{volume['id']}/actions", {"type": "detach", "droplet_id": droplet["id"]})
    assert api.ok("GET", f"/v2/volumes/{volume['id']}")["volume"]["droplet_ids"] == []
    assert api.ok("GET", f"/v2/droplets/{droplet['id']}")["droplet"]["volume_ids"] == []
    status, _, body = api.call("POST", f"/v2/volumes/{volume['id']}/actions",
                               {"type": "detach", "droplet_id": droplet["id"]})
    assert (status, body["message"]) == (422, "Attachment not found")
    assert api.call("DELETE", f"/v2/volumes/{volume['id']}")[0] == 204
    assert api.call("GET", f"/v2/volumes/{volume['id']}")[0] == 404


def test_a_droplet_created_with_volumes_holds_them_until_it_is_deleted(api: Client):
    volume = make_volume(api)
    droplet = make_droplet(api, volumes=[{"id": volume["id"]}])
    assert droplet["volume_ids"] == [volume["id"]]
    found = api.ok("GET", "/v2/volumes?name=data1&region=fra1")["volumes"]
    assert [v["droplet_ids"] for v in found] == [[droplet["id"]]]
    api.ok("DELETE", f"/v2/droplets/{droplet['id']}")
    assert api.ok("GET", f"/v2/volumes/{volume['id']}")["volume"]["droplet_ids"] == []


@pytest.mark.parametrize(("change", "message"), [
    ({"name": "Data_1"}, "volume names must start with a lowercase letter"),
    ({"size_gigabytes": 0}, "size_gigabytes must be a whole number of GiB between 1 and 16384"),
    ({"size_gigabytes": 20000}, "between 1 and 16384"),
])
def test_invalid_volume_input_is_422(api: Client, change: dict[str, Any], message: str):
    body = {"region": "fra1", "name": "data1", "size_gigabytes": 10, **change}
    status, _, answer = api.call("POST", "/v2/volumes", body)
    assert status == 422
    assert message in answer["message"]


# -- tags, firewalls, keys -------------------------------------------------------------------------


def test_tag_create_is_idempotent_and_counts_resources(api: Client):
    for _ in range(2):
        status, _, body = api.call("POST", "/v2/tags", {"name": "web"})
        assert status == 201
        assert body["tag"]["name"] == "web"
    droplet = make_droplet(api)
    volume = make_volume(api)
    resources = {"resources": [{"resource_id": str(droplet["id"]), "resource_type": "droplet"},
                               {"resource_id": volume["id"], "resource_type": "volume"}]}
    assert api.call("POST", "/v2/tags/web/resources", resources)[0] == 204
    counts = api.ok("GET", "/v2/tags/web")["tag"]["resources"]
    assert (counts["count"], counts["droplets"]["count"], counts["volumes"]["count"]) == (2, 1, 1)
    assert counts["images"] == {"count": 0}
    assert counts["databases"] == {"count": 0}
    assert api.ok("GET", f"/v2/droplets/{droplet['id']}")["droplet"]["tags"] == ["web"]
    assert api.call("DELETE", "/v2/tags/web/resources", resources)[0] == 204
    assert api.ok("GET", "/v2/tags/web")["tag"]["resources"]["count"] == 0
    api.ok("DELETE", "/v2/tags/web")
    assert api.call("GET", "/v2/tags/web")[0] == 404


def test_firewall_rules_are_echoed_exactly_and_deleted_droplets_leave_it(api: Client):
    droplet = make_droplet(api)
    body = {
        "name": "web-fw",
        "inbound_rules": [
            {"protocol": "tcp", "ports": "22", "sources": {"addresses": ["203.0.113.0/24", "::/0"]}},
            {"protocol": "tcp", "ports": "8000-9000", "sources": {"tags": ["web"]}},
            # Several tags, in the order the provider sends its set (not sorted): kept as they are.
            {"protocol": "tcp", "ports": "9100", "sources": {"tags": ["web", "db", "app-monitoring"]}},
            {"protocol": "icmp", "sources": {"addresses": ["10.0.0.0/8"]}},
        ],
        "outbound_rules": [{"protocol": "udp", "ports": "all", "destinations": {"addresses": ["0.0.0.0/0"]}}],
        "droplet_ids": [droplet["id"]], "tags": ["web"],
    }
    status, _, created = api.call("POST", "/v2/firewalls", body)
    assert status == 202
    firewall = api.ok("GET", f"/v2/firewalls/{created['firewall']['id']}")["firewall"]
    for key in ("name", "inbound_rules", "outbound_rules", "droplet_ids", "tags"):
        assert firewall[key] == body[key], key
    assert firewall["status"] == "succeeded"
    assert firewall["pending_changes"] == []
    assert api.ok("GET", f"/v2/droplets/{droplet['id']}/firewalls")["firewalls"][0]["id"] == firewall["id"]
    body["inbound_rules"] = body["inbound_rules"][:1]
    assert api.ok("PUT", f"/v2/firewalls/{firewall['id']}", body)["firewall"]["inbound_rules"] == body["inbound_rules"]
    api.ok("DELETE", f"/v2/droplets/{droplet['id']}")
    assert api.ok("GET", f"/v2/firewalls/{firewall['id']}")["firewall"]["droplet_ids"] == []
    status, _, answer = api.call("POST", "/v2/firewalls", {"name": "x", "inbound_rules": [
        {"protocol": "tcp", "ports": "22", "sources": {}}]})
    assert status == 422
    assert "sources" in answer["message"]


def test_ssh_keys_by_id_and_by_md5_fingerprint(api: Client):
    key = api.ok("POST", "/v2/account/keys", {"name": "admin", "public_key": PUBKEY})["ssh_key"]
    assert key["fingerprint"] == PUBKEY_MD5
    assert key["public_key"] == PUBKEY
    assert isinstance(key["id"], int)
    assert api.ok("GET", f"/v2/account/keys/{PUBKEY_MD5}")["ssh_key"]["id"] == key["id"]
    assert api.ok("PUT", f"/v2/account/keys/{key['id']}", {"name": "renamed"})["ssh_key"]["name"] == "renamed"
    droplet = make_droplet(api, ssh_keys=[PUBKEY_MD5, key["id"]])
    assert droplet["status"] == "active"
    assert api.call("POST", "/v2/account/keys", {"name": "again", "public_key": PUBKEY})[0] == 422
    assert api.call("POST", "/v2/account/keys", {"name": "bad", "public_key": "ssh-rsa !!!"})[0] == 422
    assert api.call("DELETE", f"/v2/account/keys/{key['id']}")[0] == 204
    assert api.call("GET", f"/v2/account/keys/{key['id']}")[0] == 404


# -- projects and VPCs -----------------------------------------------------------------------------


def test_projects_default_assignment_and_urns_dropped_on_delete(api: Client):
    default = api.ok("GET", "/v2/projects/default")["project"]
    assert default["is_default"] is True
    droplet = make_droplet(api)
    volume = make_volume(api)
    urns = {f"do:droplet:{droplet['id']}", f"do:volume:{volume['id']}"}
    listed = api.ok("GET", f"/v2/projects/{default['id']}/resources?page=1&per_page=200")["resources"]
    assert {r["urn"] for r in listed} == urns, "new resources land in the default project"
    project = api.ok("POST", "/v2/projects", {"name": "platform", "description": "", "purpose": "Data platform",
                                              "environment": "production"})["project"]
    assert (project["purpose"], project["environment"]) == ("Other: Data platform", "Production")
    assigned = api.ok("POST", f"/v2/projects/{project['id']}/resources", {"resources": sorted(urns)})
    assert {r["urn"] for r in assigned["resources"]} == urns
    assert api.ok("GET", f"/v2/projects/{default['id']}/resources")["resources"] == []
    page = api.ok("GET", f"/v2/projects/{project['id']}/resources?per_page=1")
    assert page["meta"]["total"] == 2
    assert page["links"]["pages"]["next"]
    status, _, body = api.call("DELETE", f"/v2/projects/{project['id']}")
    assert (status, body["id"]) == (412, "precondition_failed")
    assert "cannot delete a project with resources" in body["message"]
    api.ok("DELETE", f"/v2/droplets/{droplet['id']}")
    api.ok("DELETE", f"/v2/volumes/{volume['id']}")
    assert api.ok("GET", f"/v2/projects/{project['id']}/resources")["resources"] == []
    patched = api.ok("PATCH", f"/v2/projects/{project['id']}", {"name": "platform", "description": "d",
                                                                "purpose": "Service or API",
                                                                "environment": "Staging", "is_default": False})
    assert patched["project"]["description"] == "d"
    assert patched["project"]["is_default"] is False
    assert api.call("DELETE", f"/v2/projects/{project['id']}")[0] == 204
    assert api.call("DELETE", f"/v2/projects/{default['id']}")[0] == 412


def test_a_vpc_with_members_cannot_be_deleted_and_ranges_may_not_overlap(api: Client):
    vpc = api.ok("POST", "/v2/vpcs", {"name": "main", "region": "fra1", "ip_range": "10.42.0.0/24"})["vpc"]
    assert (vpc["urn"], vpc["default"], vpc["ip_range"]) == (f"do:vpc:{vpc['id']}", False, "10.42.0.0/24")
    status, _, body = api.call("POST", "/v2/vpcs", {"name": "other", "region": "ams3", "ip_range": "10.42.0.128/25"})
    assert status == 422
    assert "overlaps" in body["message"]
    droplet = make_droplet(api, vpc_uuid=vpc["id"])
    assert droplet["networks"]["v4"][0]["ip_address"] == "10.42.0.10", "addresses start at the 10th host"
    status, _, body = api.call("DELETE", f"/v2/vpcs/{vpc['id']}")
    # DigitalOcean answers 403 here; provider v1.22.2 retries a 403 only, later ones a 403 or a 409.
    assert (status, body["id"]) == (403, "forbidden")
    assert api.ok("GET", f"/v2/vpcs/{vpc['id']}/members")["members"][0]["urn"] == f"do:droplet:{droplet['id']}"
    assert api.ok("PUT", f"/v2/vpcs/{vpc['id']}", {"name": "main2", "default": False})["vpc"]["name"] == "main2"
    api.ok("DELETE", f"/v2/droplets/{droplet['id']}")
    assert api.call("DELETE", f"/v2/vpcs/{vpc['id']}")[0] == 204


# -- persistence and the control endpoints ---------------------------------------------------------


def test_state_survives_a_restart(tmp_path: Path):
    path = tmp_path / "state.json"
    first = Emulator(tokens=[TOKEN], state_file=path)
    api = Client(first.start())
    droplet = make_droplet(api)
    volume = make_volume(api)
    api.ok("POST", f"/v2/volumes/{volume['id']}/actions", {"type": "attach", "droplet_id": droplet["id"]})
    first.stop()
    assert path.stat().st_mode & 0o777 == 0o600
    second = Emulator(tokens=[TOKEN], state_file=path)
    api = Client(second.start())
    try:
        again = api.ok("GET", f"/v2/droplets/{droplet['id']}")["droplet"]
        assert again["volume_ids"] == [volume["id"]]
        assert make_droplet(api, "web2")["id"] == droplet["id"] + 1, "ids continue"
        view = api.ok("GET", "/_emulator/state")
        assert sorted(d["name"] for d in view["droplets"]) == ["web1", "web2"]
        default = next(p for p in view["projects"] if p["is_default"])
        assert f"do:volume:{volume['id']}" in default["resources"]
    finally:
        second.stop()


def test_the_state_view_lists_every_collection(api: Client):
    api.ok("POST", "/v2/account/keys", {"name": "admin", "public_key": PUBKEY})
    view = api.ok("GET", "/_emulator/state")
    for key in ("droplets", "volumes", "vpcs", "firewalls", "keys", "ssh_keys", "tags", "projects", "actions"):
        assert isinstance(view[key], list), key
    assert view["ssh_keys"][0]["fingerprint"] == PUBKEY_MD5


# -- cloud-init's part (the materializer's pure half) ----------------------------------------------


def test_the_projects_cloud_config_becomes_user_host_key_and_root_steps():
    user_data = "#cloud-config\n" + yaml.safe_dump({
        "users": [{"name": "admin", "shell": "/bin/bash", "sudo": "ALL=(ALL) NOPASSWD:ALL",
                   "ssh_authorized_keys": [PUBKEY]}],
        "ssh_keys": {"ed25519_private": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                        "-----END OPENSSH PRIVATE KEY-----\n",
                     "ed25519_public": "ssh-ed25519 AAAAhost host"},
        "ssh_deletekeys": True, "ssh_genkeytypes": [], "disable_root": True, "runcmd": ["true"],
    })
    script, ignored = cloud_init_script(user_data, [PUBKEY])
    assert ignored == ["runcmd"]
    assert "useradd --create-home --home-dir /home/admin --shell /bin/bash admin" in script
    assert "'admin ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users" in script
    assert script.index("rm -f /etc/ssh/ssh_host_*key*") < script.index("> /etc/ssh/ssh_host_ed25519_key\n")
    assert "chmod 0600 /etc/ssh/ssh_host_ed25519_key" in script
    assert "Please login as the user" in script, "disable_root keeps root's keys behind a message"
    assert "ExecStartPre=/usr/sbin/sshd -t" in script, "ssh_genkeytypes: [] makes no other host keys"
    assert script.rstrip().endswith("touch /var/lib/cloud/instance/boot-finished")
