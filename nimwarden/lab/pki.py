"""The lab's PKI: a CA generated at lab start, server and client certificates, and
a self-signed, nearly expired certificate for the deliberately weak deployment.

Everything is generated with ``cryptography`` into the lab state directory;
private keys are written 0600. Nothing here is meant for production: the CA
lives as long as the lab does.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LAB_ORG = "nimwarden lab"


@dataclass(frozen=True)
class CertFiles:
    """Paths of one certificate (PEM) and its private key (PEM, 0600)."""

    cert: Path
    key: Path

    def as_dict(self) -> dict[str, str]:
        return {"cert": str(self.cert), "key": str(self.key)}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_key(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, organizations: tuple[str, ...] = (LAB_ORG,)) -> x509.Name:
    return x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def _load(files: CertFiles) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return cert, key


def create_ca(directory: Path, name: str = "nimwarden lab CA", days: int = 365) -> CertFiles:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = CertFiles(directory / "ca.pem", directory / "ca.key")
    _write_key(files.key, key)
    _write_cert(files.cert, cert)
    return files


def issue(
    ca: CertFiles,
    directory: Path,
    name: str,
    hosts: list[str] | None = None,
    *,
    client: bool = False,
    days: int = 90,
    key_size: int = 2048,
    groups: tuple[str, ...] = (),
    common_name: str | None = None,
    elliptic: bool = False,
) -> CertFiles:
    """A leaf certificate signed by ``ca``: a server certificate for ``hosts``, or a client certificate.

    ``common_name`` and ``groups`` (the subject's O entries) default to ``name`` and the lab's
    organisation; a Kubernetes API server reads them as the user name and groups of a client
    certificate. ``elliptic`` gives a P-256 key (fast to generate) instead of RSA."""
    ca_cert, ca_key = _load(ca)
    key = ec.generate_private_key(ec.SECP256R1()) if elliptic else rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name or name, tuple(groups) or (LAB_ORG,)))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    files = CertFiles(directory / f"{name}.pem", directory / f"{name}.key")
    _write_key(files.key, key)
    _write_cert(files.cert, cert)
    return files


def self_signed(directory: Path, name: str, hosts: list[str], *, days_left: float = 5, key_size: int = 1024) -> CertFiles:
    """A self-signed server certificate that expires in ``days_left`` days (negative: already expired).

    This is the common mistake the ``exposed`` deployment makes: no CA, a
    short legacy key, and nobody watching the expiry date.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    now = _now()
    not_after = now + dt.timedelta(days=days_left)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_after) - dt.timedelta(days=365))
        .not_valid_after(not_after)
        .add_extension(_san(hosts), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = CertFiles(directory / f"{name}.pem", directory / f"{name}.key")
    _write_key(files.key, key)
    _write_cert(files.cert, cert)
    return files


def lab_pki(directory: Path, server_hosts: dict[str, list[str]], *, weak_hosts: dict[str, list[str]] | None = None) -> dict:
    """Generate the whole lab PKI at once.

    ``server_hosts`` maps a deployment name to the names/addresses its
    CA-signed certificate covers; ``weak_hosts`` maps a deployment name to the
    hosts of its self-signed, near-expiry certificate. Returns a JSON-able
    mapping of paths for the lab state file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = create_ca(directory)
    out: dict = {"ca": str(ca.cert), "servers": {}, "clients": {}, "self_signed": {}}
    for dep, hosts in server_hosts.items():
        out["servers"][dep] = issue(ca, directory, f"{dep}-server", hosts).as_dict()
        out["clients"][dep] = issue(ca, directory, f"{dep}-client", client=True).as_dict()
    for dep, hosts in (weak_hosts or {}).items():
        out["self_signed"][dep] = self_signed(directory, f"{dep}-selfsigned", hosts).as_dict()
    return out
