"""HTTPS to a pinned IP still verifies the certificate against, and sends SNI for, the real name."""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mediamill.net import FetchPolicy, FetchRefused, fetch_to_file
from tests.net.conftest import LoopbackServer, Server, send

BODY = b"\xff\xd8\xff\xe0 tls body"


@dataclass
class TlsServer:
    """The HTTPS test server, the CA that signed it, and the SNI names it was asked for."""

    http: Server
    ca_pem: str
    sni: list[str | None]

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)])


def _issue(tmp_path: Path) -> tuple[str, Path, Path]:
    """A throwaway CA and a leaf for media.test only; returns CA PEM and leaf cert/key files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("mediamill test CA"))
        .issuer_name(_name("mediamill test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("media.test"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("media.test")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca.public_bytes(serialization.Encoding.PEM).decode(), cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    """The loopback server behind TLS with a certificate valid for media.test only."""
    ca_pem, cert_file, key_file = _issue(tmp_path)
    sni: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda _sock, name, _ctx: sni.append(name)
    httpd = LoopbackServer()
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.state.routes["/a.jpg"] = lambda h: send(h, 200, BODY, {"Content-Type": "image/jpeg"})
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield TlsServer(httpd.state, ca_pem, sni)
    finally:
        httpd.state.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _policy(tls: TlsServer, **overrides: object) -> FetchPolicy:
    options: dict[str, object] = {
        "allowed_networks": ("127.0.0.1/32",),
        "timeout_seconds": 5.0,
        "resolver": lambda host, port: ["127.0.0.1"],
        "tls_context": tls.client_context(),
    }
    options.update(overrides)
    return FetchPolicy(**options)  # type: ignore[arg-type]


def test_pinned_https_verifies_and_sends_the_real_name(
    tls_server: TlsServer, tmp_path: Path, connects: list[tuple[str, int]]
) -> None:
    port = tls_server.http.port
    result = fetch_to_file(f"https://media.test:{port}/a.jpg", tmp_path / "a", _policy(tls_server))
    assert (tmp_path / "a").read_bytes() == BODY
    assert result.final_url == f"https://media.test:{port}/a.jpg"
    assert connects == [("127.0.0.1", port)]
    assert tls_server.sni == ["media.test"]
    assert tls_server.http.requests[0].headers["host"] == f"media.test:{port}"


@pytest.mark.parametrize("host", ["other.test", "127.0.0.1"])
def test_certificate_for_another_name_is_refused(
    tls_server: TlsServer, tmp_path: Path, host: str
) -> None:
    url = f"https://{host}:{tls_server.http.port}/a.jpg"
    with pytest.raises(FetchRefused) as caught:
        fetch_to_file(url, tmp_path / "a", _policy(tls_server))
    assert caught.value.code == "certificate_error"
    assert tls_server.http.requests == []
    assert not (tmp_path / "a").exists()


def test_default_trust_store_refuses_an_unknown_ca(tls_server: TlsServer, tmp_path: Path) -> None:
    url = f"https://media.test:{tls_server.http.port}/a.jpg"
    with pytest.raises(FetchRefused) as caught:
        fetch_to_file(url, tmp_path / "a", _policy(tls_server, tls_context=None))
    assert caught.value.code == "certificate_error"
