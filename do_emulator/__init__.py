"""A stateful DigitalOcean API v2 emulator that terraform-provider-digitalocean can drive.

Run it with ``python -m do_emulator`` (see ``__main__.py``) or in-process with
:class:`do_emulator.server.Emulator`. ``state.py`` is the account model,
``server.py`` the HTTP layer, ``materialize.py`` turns droplets, VPCs and volumes into local
containers, Docker networks and loop devices (``--materialize``).
"""
