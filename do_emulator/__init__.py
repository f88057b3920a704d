"""A stateful DigitalOcean API v2 emulator that terraform-provider-digitalocean can drive.

Run it with ``python -m do_emulator`` (see ``__main__.py``) or in-process with
:class:`do_emulator.server.Emulator`. ``catalogue.py`` is what DigitalOcean offers (sizes, regions,
images), ``state/`` the account model (one module per kind of resource), ``server.py`` the HTTP
layer, ``materialize.py`` turns droplets, VPCs and volumes into local containers, Docker networks
and loop devices (``--materialize``).

It is a test tool of platform-ctl, not part of the product: it may use the product's local
backend to materialize droplets, but it takes nothing from the product's tables (``platform_ctl.spec``),
and nothing in ``platform_ctl`` imports it.
"""
