"""SSH keys of the account (``/v2/account/keys``), found by ID or by fingerprint."""

from __future__ import annotations

import base64
import binascii
import hashlib

from do_emulator.state.core import Json, invalid, not_found, str_field
from do_emulator.state.tags import Tags


def fingerprint(public_key: str) -> str:
    """DigitalOcean's key fingerprint: MD5 of the decoded key blob, colon-separated hex."""
    parts = public_key.strip().split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise invalid("Key invalid, key should be of the form 'ssh-<type> <base64 key> [comment]'")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Key invalid, the key data is not valid base64") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


class Keys(Tags):
    """The account's SSH keys."""

    # -- SSH keys --------------------------------------------------------------------------------
    def create_key(self, body: Json) -> Json:
        name = str_field(body, "name", required=True)
        public_key = str_field(body, "public_key", required=True)
        fp = fingerprint(public_key)
        if any(k["fingerprint"] == fp for k in self.keys.values()):
            raise invalid("SSH Key is already in use on your account")
        key = {"id": self._next("key"), "fingerprint": fp, "public_key": public_key, "name": name}
        self.keys[str(key["id"])] = key
        return key

    def key(self, ref: str) -> Json:
        if ref in self.keys:
            return self.keys[ref]
        for key in self.keys.values():
            if key["fingerprint"] == ref:
                return key
        raise not_found()

    def update_key(self, ref: str, body: Json) -> Json:
        key = self.key(ref)
        if "name" in body:
            key["name"] = str_field(body, "name", required=True)
            self.dirty = True
        return key

    def delete_key(self, ref: str) -> None:
        del self.keys[str(self.key(ref)["id"])]
        self.dirty = True
