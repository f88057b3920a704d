"""The environment's internal certificate authority, kept on the controller.

Every TLS service of the platform (MinIO, PostgreSQL, Trino, ...) gets a certificate signed by this
CA, and every client verifies against the CAs the environment trusts. The CA key never leaves
``.platform/<env>/pki/`` (a 0700 directory, the key 0600). Ansible makes and signs each host's key
and certificate there (``hosts/``) and copies them to the host (roles/common/tasks/certificate.yml).

``pki/``
  ``ca.crt``, ``ca.key``   the CA that signs (``platform_pki.ca_certificate``)
  ``trusted.crt``          the CAs clients trust, one PEM bundle (``platform_pki.trust_bundle``):
                           the signing CA alone, except while the CA is rotated
  ``next/``                a rotation's new CA, trusted but not yet signing
  ``previous/``            a rotation's old CA, still trusted, no longer signing

A rotation (``rotate-secrets --only ca``) trusts the new CA everywhere, then re-issues every
certificate from it, then stops trusting the old one: at each step every client trusts the CA of
every certificate it is shown.
"""

from __future__ import annotations

import datetime
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

#: Long enough that no environment outlives it; host certificates are short-lived and renewed.
CA_DAYS = 3650
CERT_FILE, KEY_FILE = "ca.crt", "ca.key"
NEXT, PREVIOUS = "next", "previous"


@dataclass(frozen=True)
class CertificateAuthority:
    certificate: Path
    private_key: Path

    @property
    def pki_dir(self) -> Path:
        return self.certificate.parent

    @property
    def hosts_dir(self) -> Path:
        return self.pki_dir / "hosts"

    @property
    def trust_bundle(self) -> Path:
        return self.pki_dir / "trusted.crt"

    def as_inventory(self) -> dict[str, str]:
        return {"ca_certificate": str(self.certificate), "ca_private_key": str(self.private_key),
                "hosts_dir": str(self.hosts_dir), "trust_bundle": str(self.trust_bundle)}


def _authority(directory: Path) -> CertificateAuthority:
    return CertificateAuthority(directory / CERT_FILE, directory / KEY_FILE)


def _write_key(path: Path, pem: bytes) -> None:
    """A private key, 0600 from its creation."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _make_ca(ca: CertificateAuthority, common_name: str) -> None:
    """An EC P-256 key and a self-signed CA certificate at ``ca``'s paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "platform-ctl"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    ca.pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The key first, the certificate last, so a half-made CA is redone.
    _write_key(ca.private_key, key_pem)
    ca.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _complete(ca: CertificateAuthority) -> bool:
    return ca.certificate.exists() and ca.private_key.exists()


def _trust(ca: CertificateAuthority, *also: CertificateAuthority) -> None:
    """Write the trust bundle: ``ca`` and ``also``, in that order (replaced whole, never half-written)."""
    bundle = "".join(c.certificate.read_text() for c in (ca, *also))
    partial = ca.trust_bundle.with_suffix(".partial")
    partial.write_text(bundle)
    partial.replace(ca.trust_bundle)


def ensure_ca(state_dir: Path, env: str) -> CertificateAuthority:
    """The environment's CA, created on first use (an EC P-256 key and a self-signed certificate)."""
    pki = state_dir / "pki"
    ca = _authority(pki)
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca.hosts_dir.mkdir(exist_ok=True, mode=0o700)
    if not _complete(ca):
        _make_ca(ca, f"platform-ctl {env} internal CA")
    if not ca.trust_bundle.exists():  # an environment made before trust bundles trusts its CA alone
        _trust(ca)
    return ca


def trusted_subjects(ca: CertificateAuthority) -> list[str]:
    """The common names of the CAs in the trust bundle, in order."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value  # type: ignore[misc]
            for c in x509.load_pem_x509_certificates(ca.trust_bundle.read_bytes())]


# The three moves of a CA rotation. Each is idempotent, so a rotation killed anywhere is run again.

def add_next_ca(state_dir: Path, env: str) -> CertificateAuthority:
    """A new CA in ``pki/next/``, trusted next to the signing one (the bundle: signing CA, then the new).

    After the switch (``previous/`` exists) there is nothing left to do.
    """
    ca = ensure_ca(state_dir, env)
    nxt, previous = _authority(ca.pki_dir / NEXT), _authority(ca.pki_dir / PREVIOUS)
    if previous.certificate.exists():
        return ca
    if not _complete(nxt):
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        _make_ca(nxt, f"platform-ctl {env} internal CA {stamp}")
    _trust(ca, nxt)
    return nxt


def switch_ca(state_dir: Path) -> None:
    """The new CA signs from now on; the old one is kept in ``pki/previous/``, still trusted.

    The old CA is copied to ``previous/`` first (its certificate last: a complete copy), then the
    new key and certificate replace the signing ones, each in one rename: ``ca.crt`` and ``ca.key``
    never go missing, so nothing ever takes the CA for absent and makes another one.
    """
    ca = _authority(state_dir / "pki")
    nxt, previous = _authority(ca.pki_dir / NEXT), _authority(ca.pki_dir / PREVIOUS)
    if not nxt.certificate.exists():
        if not _complete(previous):
            raise FileNotFoundError(f"{nxt.certificate}: no new CA to switch to")
        _trust(ca, previous)  # switched by the interrupted run
        return
    if not _complete(previous):  # the signing CA is still the old one: the key is swapped after this
        previous.pki_dir.mkdir(exist_ok=True, mode=0o700)
        _write_key(previous.private_key, ca.private_key.read_bytes())
        previous.certificate.write_bytes(ca.certificate.read_bytes())
    if nxt.private_key.exists():
        nxt.private_key.replace(ca.private_key)
    nxt.certificate.replace(ca.certificate)
    nxt.pki_dir.rmdir()
    _trust(ca, previous)


def drop_previous_ca(state_dir: Path, env: str) -> None:
    """Trust the signing CA alone (the old CA's key stays in ``pki/previous/`` until ``forget_previous_ca``)."""
    _trust(ensure_ca(state_dir, env))


def forget_previous_ca(state_dir: Path) -> None:
    """Delete the old CA's key and certificate from the controller."""
    shutil.rmtree(state_dir / "pki" / PREVIOUS, ignore_errors=True)
