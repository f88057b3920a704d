"""The emulator's own DigitalOcean catalogue, and the product's tables checked against it.

The emulator knows DigitalOcean's sizes, regions and images from DigitalOcean's documentation
(do_emulator/catalogue.py), not from platform_ctl.spec: a slug the product gets wrong is refused
by the emulator as by the API (422), and the cross-check below names it before any deploy.
"""

from __future__ import annotations

import ast
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from do_emulator import catalogue
from do_emulator.server import Emulator
from platform_ctl import spec

REPO = Path(__file__).resolve().parents[2]
TOKEN = "catalogue-token"


def _post(url: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    running = Emulator(tokens=[TOKEN])
    try:
        yield running.start()
    finally:
        running.stop()


def _droplet(**change: Any) -> dict[str, Any]:
    return {"name": "c1", "region": "fra1", "size": "s-1vcpu-1gb", "image": "debian-12-x64", **change}


@pytest.mark.parametrize(("change", "message"), [
    # Plausible slugs DigitalOcean does not offer: a product table with one of them is caught here.
    ({"size": "s-2vcpu-16gb"}, "You specified an invalid size for Droplet creation."),
    ({"size": "g-2vcpu-4gb"}, "You specified an invalid size for Droplet creation."),
    ({"size": "c-6"}, "You specified an invalid size for Droplet creation."),
    ({"region": "fra2"}, "You specified an invalid region for Droplet creation."),
    ({"region": "nyc2"}, "You specified an invalid region for Droplet creation."),  # takes no new droplets
    ({"image": "debian-13-x63"}, "You specified an invalid image for Droplet creation."),
])
def test_a_droplet_outside_digitaloceans_catalogue_is_refused_with_422(url: str, change: dict[str, Any],
                                                                       message: str) -> None:
    status, body = _post(url, "/v2/droplets", _droplet(**change))
    assert status == 422
    assert body["id"] == "unprocessable_entity"
    assert body["message"] == message
    assert body["request_id"]


def test_a_size_in_the_catalogue_is_created_with_its_figures(url: str) -> None:
    status, body = _post(url, "/v2/droplets", _droplet(name="c2", size="m-2vcpu-16gb"))
    assert status == 202
    droplet = body["droplet"]
    assert (droplet["vcpus"], droplet["memory"], droplet["disk"]) == (2, 16384, 50)
    assert droplet["size"]["price_monthly"] == 84.0


def test_every_size_platform_ctl_plans_with_is_digitaloceans_with_the_same_vcpus_and_memory() -> None:
    wrong = {slug: ((size.vcpus, size.memory_mb), (known["vcpus"], known["memory"]) if known else None)
             for slug, size in spec.SIZES.items()
             if (known := catalogue.size(slug)) is None
             or (known["vcpus"], known["memory"]) != (size.vcpus, size.memory_mb)}
    assert wrong == {}, "platform_ctl.spec.SIZES (vcpus, memory MB) vs DigitalOcean's: " + repr(wrong)


def test_every_region_and_image_platform_ctl_accepts_takes_new_droplets() -> None:
    assert [r for r in spec.DO_REGIONS if catalogue.region(r) is None] == []
    assert [i for i in spec.IMAGES if catalogue.image(i) is None] == []
    for slug in spec.SIZES:
        assert set(spec.DO_REGIONS) <= set(catalogue.SIZES[slug]["regions"]), slug


def test_the_catalogue_is_shaped_as_the_api_answers() -> None:
    for slug, size in catalogue.SIZES.items():
        assert size["slug"] == slug
        assert all(isinstance(size[k], int) and not isinstance(size[k], bool) for k in ("memory", "vcpus", "disk"))
        assert size["memory"] % 8 == 0  # the API reference: memory is a multiple of 8 (MB)
        assert size["price_hourly"] == round(size["price_monthly"] / 672, 5)
        assert set(size["regions"]) <= {r for r, region in catalogue.REGIONS.items() if region["available"]}
    for slug, region in catalogue.REGIONS.items():
        assert region["slug"] == slug
        assert set(region["sizes"]) <= set(catalogue.SIZES)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_emulator_takes_nothing_from_the_products_tables_and_the_product_nothing_from_it() -> None:
    emulator = {str(p.relative_to(REPO)): _imports(p) for p in (REPO / "do_emulator").rglob("*.py")}
    product = {str(p.relative_to(REPO)): _imports(p) for p in (REPO / "platform_ctl").rglob("*.py")}
    assert {f: m for f, ms in emulator.items() for m in ms if m.startswith("platform_ctl.spec")} == {}
    assert {f: m for f, ms in product.items() for m in ms if m.split(".")[0] == "do_emulator"} == {}
