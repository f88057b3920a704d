"""The environment's internal certificate authority, kept on the controller.

Every TLS service of the platform (MinIO, PostgreSQL, Trino, ...) gets a certificate signed by this
CA, and every client verifies against it. The CA key never leaves ``.platform/<env>/pki/`` (a 0700
directory, the key 0600). Ansible makes and signs each host's key and certificate there
(``hosts/``) and copies them to the host (roles/_common/tasks/certificate.yml).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

#: Long enough that no environment outlives it; host certificates are short-lived and renewed.
CA_DAYS = 3650


@dataclass(frozen=True)
class CertificateAuthority:
    certificate: Path
    private_key: Path

    @property
    def hosts_dir(self) -> Path:
        return self.certificate.parent / "hosts"

    def as_inventory(self) -> dict[str, str]:
        return {"ca_certificate": str(self.certificate), "ca_private_key": str(self.private_key),
                "hosts_dir": str(self.hosts_dir)}


def ensure_ca(state_dir: Path, env: str) -> CertificateAuthority:
    """The environment's CA, created on first use (an EC P-256 key and a self-signed certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pki = state_dir / "pki"
    ca = CertificateAuthority(pki / "ca.crt", pki / "ca.key")
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca.hosts_dir.mkdir(exist_ok=True, mode=0o700)
    if ca.certificate.exists() and ca.private_key.exists():
        return ca
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "platform-ctl"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"platform-ctl {env} internal CA"),
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
    # The key first, written 0600 from the start; the certificate last, so a half-made CA is redone.
    fd = os.open(ca.private_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    ca.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return ca
