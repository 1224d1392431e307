"""HTTPS for the signaling server: a self-signed certificate made on first use, or the
user's own.

Browsers warn about a self-signed certificate; the owner shows its SHA-256 fingerprint
(:func:`sha256_fingerprint`, colon hex as browsers display it) beside the invite link
so a careful guest can compare. The certificate is an EC P-256 key, valid 2 years,
with subject alternative names for the host's addresses (loopback included) and
``p2pchat.local``. It is kept in the data directory, the key readable by its owner
only (0600); one that expires within 30 days, or that no longer parses, is replaced.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ifaddr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_FILE = "signaling-cert.pem"
KEY_FILE = "signaling-key.pem"
DNS_NAME = "p2pchat.local"
VALIDITY = datetime.timedelta(days=730)
RENEW_BEFORE = datetime.timedelta(days=30)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class CertificateError(Exception):
    """A certificate or key file is missing, unreadable or not a usable pair."""


@dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path

    def certificate(self) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(self.cert.read_bytes())
        except (OSError, ValueError) as exc:
            raise CertificateError(f"cannot read the certificate {self.cert}: {exc}") from exc


def load_or_create_certificate(
    data_dir: Path, *, addresses: Iterable[str] | None = None
) -> CertificateFiles:
    """The self-signed certificate in ``data_dir``, made (or renewed) if need be.

    ``addresses``: IPs for the subject alternative names (default: this host's)."""
    files = CertificateFiles(data_dir / CERT_FILE, data_dir / KEY_FILE)
    if files.cert.exists() and files.key.exists() and _still_good(files):
        return files
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ips = [ipaddress.ip_address(a) for a in (addresses if addresses is not None else host_ips())]
    cert_pem, key_pem = _make_self_signed(ips)
    _write_atomically(files.key, key_pem, mode=0o600)
    _write_atomically(files.cert, cert_pem, mode=0o644)
    return files


def user_certificate(cert: Path, key: Path) -> CertificateFiles:
    """The user's own ``--cert``/``--key``, checked to load as a pair."""
    files = CertificateFiles(cert, key)
    ssl_context(files)
    return files


def sha256_fingerprint(cert: x509.Certificate | CertificateFiles) -> str:
    """``AB:CD:…`` (32 bytes, upper-case colon hex): what browsers show."""
    if isinstance(cert, CertificateFiles):
        cert = cert.certificate()
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def ssl_context(files: CertificateFiles) -> ssl.SSLContext:
    """A server context: TLS 1.2 or later, the certificate and key loaded."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(
            f"cannot use certificate {files.cert} with key {files.key}: {exc}"
        ) from exc
    return context


def host_ips() -> list[str]:
    """This host's addresses for the certificate: every interface's IPv4 and global or
    unique-local IPv6 (link-local IPv6 needs a zone, which a certificate cannot hold)."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            if address.version == 6 and address.is_link_local:
                continue
            if str(address) not in found:
                found.append(str(address))
    for loopback in ("127.0.0.1", "::1"):
        if loopback not in found:
            found.append(loopback)
    return found


# --- private ---------------------------------------------------------------------


def _still_good(files: CertificateFiles) -> bool:
    try:
        cert = files.certificate()
        ssl_context(files)
    except CertificateError:
        return False
    now = datetime.datetime.now(datetime.UTC)
    return cert.not_valid_after_utc - now > RENEW_BEFORE


def _make_self_signed(ips: Sequence[IPAddress]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DNS_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    san: list[x509.GeneralName] = [x509.DNSName(DNS_NAME)]
    san += [x509.IPAddress(ip) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    # mkstemp creates the file 0600: the key is never readable by others, not even briefly.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
