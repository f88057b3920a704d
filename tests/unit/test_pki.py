"""The controller's CA and its rotation with a trust overlap (platform_ctl.pki), on files only."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from platform_ctl import pki


def _issue(ca: pki.CertificateAuthority) -> x509.Certificate:
    """A host certificate signed by ``ca`` (as roles/common's certificate tasks sign one)."""
    issuer = x509.load_pem_x509_certificate(ca.certificate.read_bytes())
    signer = serialization.load_pem_private_key(ca.private_key.read_bytes(), None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minio1")]))
            .issuer_name(issuer.subject)
            .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(signer, hashes.SHA256()))


def _trusted_by(bundle: Path, certificate: x509.Certificate) -> bool:
    """Whether a CA of the bundle signed the certificate."""
    for ca in x509.load_pem_x509_certificates(bundle.read_bytes()):
        try:
            certificate.verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError):  # another CA: not its signature, or not its name
            continue
        return True
    return False


def test_a_new_ca_trusts_itself_alone_and_keeps_its_key_private(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path, "prod")
    assert pki.trusted_subjects(ca) == ["platform-ctl prod internal CA"]
    assert stat.S_IMODE(ca.private_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(ca.pki_dir.stat().st_mode) == 0o700
    assert ca.as_inventory()["trust_bundle"] == str(tmp_path / "pki" / "trusted.crt")
    again = pki.ensure_ca(tmp_path, "prod")
    assert again.certificate.read_bytes() == ca.certificate.read_bytes()


def test_an_environment_made_before_trust_bundles_gets_one(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path, "prod")
    ca.trust_bundle.unlink()
    pki.ensure_ca(tmp_path, "prod")
    assert ca.trust_bundle.read_bytes() == ca.certificate.read_bytes()


def test_a_rotation_trusts_both_cas_until_every_certificate_is_reissued(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path, "prod")
    old_ca = ca.certificate.read_bytes()
    old_cert = _issue(ca)

    new = pki.add_next_ca(tmp_path, "prod")
    assert pki.add_next_ca(tmp_path, "prod").certificate.read_bytes() == new.certificate.read_bytes(), "rerun: same"
    assert ca.certificate.read_bytes() == old_ca, "the old CA still signs"
    assert len(pki.trusted_subjects(ca)) == 2
    assert stat.S_IMODE(new.private_key.stat().st_mode) == 0o600
    new_cert, new_ca = _issue(new), new.certificate.read_bytes()
    assert _trusted_by(ca.trust_bundle, old_cert)
    assert _trusted_by(ca.trust_bundle, new_cert)

    pki.switch_ca(tmp_path)
    pki.switch_ca(tmp_path)  # a rerun changes nothing
    assert ca.certificate.read_bytes() == new_ca, "the new CA signs"
    assert (ca.pki_dir / "previous" / "ca.crt").read_bytes() == old_ca
    assert not (ca.pki_dir / "next").exists()
    assert _trusted_by(ca.trust_bundle, old_cert), "certificates not yet re-issued are still trusted"
    assert _trusted_by(ca.trust_bundle, _issue(ca))

    pki.drop_previous_ca(tmp_path, "prod")
    assert not _trusted_by(ca.trust_bundle, old_cert), "the old CA is trusted no more"
    assert _trusted_by(ca.trust_bundle, new_cert)
    pki.forget_previous_ca(tmp_path)
    assert not (ca.pki_dir / "previous").exists()
    assert pki.trusted_subjects(ca) == pki.trusted_subjects(pki.ensure_ca(tmp_path, "prod"))


def test_a_switch_killed_between_its_renames_finishes_with_the_same_cas(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path, "prod")
    old_ca = ca.certificate.read_bytes()
    new = pki.add_next_ca(tmp_path, "prod")
    new_ca, new_key = new.certificate.read_bytes(), new.private_key.read_bytes()
    # Killed after the old CA was copied to previous/ and the new key moved in, before the certificate.
    previous = ca.pki_dir / "previous"
    previous.mkdir(mode=0o700)
    (previous / "ca.key").write_bytes(ca.private_key.read_bytes())
    (previous / "ca.crt").write_bytes(old_ca)
    new.private_key.replace(ca.private_key)
    pki.ensure_ca(tmp_path, "prod")  # a deploy in between makes no third CA
    pki.switch_ca(tmp_path)
    assert ca.certificate.read_bytes() == new_ca
    assert ca.private_key.read_bytes() == new_key
    assert (previous / "ca.crt").read_bytes() == old_ca
    assert pki.trusted_subjects(ca)[1] == "platform-ctl prod internal CA"
