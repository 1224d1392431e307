"""A throw-away certificate authority for tests: a CA and leaves with IP SANs.

    ca = CertAuthority(tmp_path / "ca")
    leaf = ca.issue("signal", ["10.240.0.10", "10.240.0.11"])
    # server: --cert leaf.cert_file --key leaf.key_file (the chain: leaf, then the CA)
    # Python clients and the node: env SSL_CERT_FILE=ca.ssl_cert_file; then
    #   ssl.create_default_context() (and so aiohttp) trusts the CA, and only it
    # Chromium: launch_chromium(..., extra_args=ca.chromium_args(leaf)) and a context
    #   with ignore_https_errors=False

How Chromium trusts it: Chromium on Linux reads extra roots only from an NSS database
(``~/.pki/nssdb``), which needs ``certutil`` (libnss3-tools, not installed here). It
also takes ``--ignore-certificate-errors-spki-list=<base64 SHA-256 of a
SubjectPublicKeyInfo>,…``: a chain holding one of those keys is accepted as valid (no
interstitial, a secure context, TLS details shown). Chromium honours the flag only with
``--user-data-dir``, which Playwright always passes (its temporary profile). Unlike
Playwright's ``ignore_https_errors``, it accepts only our keys: any other certificate
still fails, so a test proves the browser really got *this* server's certificate.

Keys are ECDSA P-256 (fast to make); certificates are valid from one hour ago for a day.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=1)
_BACKDATE = datetime.timedelta(hours=1)  # clocks of namespaces are ours, but be lenient
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class LeafCertificate:
    """A server certificate issued by a :class:`CertAuthority`."""

    cert_file: Path  # PEM: the leaf, then the CA (the chain a server sends)
    key_file: Path  # PEM, PKCS#8, 0600
    certificate: x509.Certificate
    spki_sha256: str  # base64 SHA-256 of the leaf's SubjectPublicKeyInfo (Chromium's form)


class CertAuthority:
    """A CA whose key and certificate live in ``directory`` (created if missing)."""

    def __init__(self, directory: Path, name: str = "p2pchat test CA") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ssl_cert_file: Path = directory / "ca.pem"
        self.ssl_cert_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self.spki_sha256 = spki_sha256(self.certificate)

    def issue(
        self, name: str, ip_addresses: Sequence[str], dns_names: Sequence[str] = ()
    ) -> LeafCertificate:
        """A server certificate for ``ip_addresses`` (and ``dns_names``), written as
        ``<name>.pem`` / ``<name>-key.pem`` in the CA's directory."""
        if not ip_addresses and not dns_names:
            raise ValueError("a leaf needs at least one IP address or DNS name")
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses
        ]
        sans += [x509.DNSName(dns) for dns in dns_names]
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        cert_file = self.directory / f"{name}.pem"
        key_file = self.directory / f"{name}-key.pem"
        cert_file.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + self.certificate.public_bytes(serialization.Encoding.PEM)
        )
        key_file.touch(mode=0o600)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return LeafCertificate(cert_file, key_file, cert, spki_sha256(cert))

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only (hostnames checked)."""
        return ssl.create_default_context(cafile=str(self.ssl_cert_file))

    def client_env(self) -> dict[str, str]:
        """Environment for a child process (node, Python client) to trust this CA only."""
        return {"SSL_CERT_FILE": str(self.ssl_cert_file)}

    def chromium_args(self, *leaves: LeafCertificate) -> list[str]:
        """Chromium flags accepting chains that hold this CA's key or one of ``leaves``'."""
        hashes_ = [self.spki_sha256, *(leaf.spki_sha256 for leaf in leaves)]
        return [f"--ignore-certificate-errors-spki-list={','.join(hashes_)}"]


def spki_sha256(cert: x509.Certificate) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo DER)): the form Chromium's SPKI list takes."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
