"""The self-signed certificate: made once, kept 0600, the right names, renewed when
near expiry; the fingerprint as browsers show it; user certificates checked."""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from signaling import tls


def test_made_on_first_use_then_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = tls.load_or_create_certificate(data, addresses=["192.168.1.20", "fd00::2"])
    assert files.cert.parent == data
    assert (files.key.stat().st_mode & 0o777) == 0o600
    assert (data.stat().st_mode & 0o777) == 0o700
    first = files.cert.read_bytes()
    again = tls.load_or_create_certificate(data)
    assert again == files
    assert again.cert.read_bytes() == first
    assert [p.name for p in data.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_certificate_contents(tmp_path: Path) -> None:
    files = tls.load_or_create_certificate(tmp_path, addresses=["192.168.1.20", "fd00::2"])
    cert = files.certificate()
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["p2pchat.local"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.168.1.20"),
        ipaddress.ip_address("fd00::2"),
    ]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=729) < lifetime < datetime.timedelta(days=731)


def test_default_names_are_this_hosts_addresses(tmp_path: Path) -> None:
    ips = tls.host_ips()
    assert "127.0.0.1" in ips
    assert not any(ip.lower().startswith("fe80") for ip in ips)
    cert = tls.load_or_create_certificate(tmp_path).certificate()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == set(ips)


def test_fingerprint_is_colon_hex_sha256(tmp_path: Path) -> None:
    files = tls.load_or_create_certificate(tmp_path, addresses=["127.0.0.1"])
    shown = tls.sha256_fingerprint(files)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", shown)
    assert shown == tls.sha256_fingerprint(files.certificate())


def test_near_expiry_or_damaged_certificate_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = tls.load_or_create_certificate(tmp_path, addresses=["127.0.0.1"])
    before = tls.sha256_fingerprint(files)
    monkeypatch.setattr(tls, "RENEW_BEFORE", datetime.timedelta(days=800))
    renewed = tls.load_or_create_certificate(tmp_path, addresses=["127.0.0.1"])
    assert tls.sha256_fingerprint(renewed) != before
    monkeypatch.undo()
    files.cert.write_text("garbage")
    repaired = tls.load_or_create_certificate(tmp_path, addresses=["127.0.0.1"])
    assert tls.sha256_fingerprint(repaired)


def test_ssl_context_is_tls12_or_later(tmp_path: Path) -> None:
    context = tls.ssl_context(tls.load_or_create_certificate(tmp_path, addresses=["127.0.0.1"]))
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_user_certificate_must_load_as_a_pair(tmp_path: Path) -> None:
    a = tls.load_or_create_certificate(tmp_path / "a", addresses=["127.0.0.1"])
    b = tls.load_or_create_certificate(tmp_path / "b", addresses=["127.0.0.1"])
    assert tls.user_certificate(a.cert, a.key) == a
    with pytest.raises(tls.CertificateError, match="cannot use certificate"):
        tls.user_certificate(a.cert, b.key)
    with pytest.raises(tls.CertificateError):
        tls.user_certificate(tmp_path / "missing.pem", a.key)
