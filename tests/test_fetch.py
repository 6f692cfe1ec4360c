"""The hardened fetcher (oauth_middleware/fetch.py) against real loopback servers, and its address rule.

Every refusal is one row: too large, too slow (also a server that trickles
its answer byte by byte), a redirect, a status other than 200, not JSON, a
special-use address. A client's ``jwks_uri`` goes through the same fetcher.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from conftest import register, serve_wsgi

from oauth_middleware.fetch import Fetcher, FetchError, max_age

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


class DocumentServer:
    """Serves one answer, set by the test: status, headers, body, and a delay before it."""

    def __init__(self) -> None:
        self.status = "200 OK"
        self.headers = [("Content-Type", "application/json")]
        self.body = b'{"ok": true}'
        self.delay = 0.0
        self.hits = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.hits += 1
        time.sleep(self.delay)
        start_response(self.status, list(self.headers))
        return [self.body]


@pytest.fixture
def documents() -> Iterator[tuple[DocumentServer, str]]:
    server = DocumentServer()
    with serve_wsgi(server) as url:
        yield server, url + "/doc.json"


@contextlib.contextmanager
def trickling_server(interval: float) -> Iterator[str]:
    """A raw server that sends a valid answer one byte every ``interval`` seconds; its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                answer = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"ok": true}'
                for byte in answer:
                    if stop.wait(interval):
                        return
                    conn.sendall(bytes([byte]))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/doc.json"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def loopback_fetcher(timeout: float = 2.0) -> Fetcher:
    return Fetcher(timeout=timeout, allowed=LOOPBACK)


def test_a_document_is_fetched_with_its_cache_lifetime(documents):
    server, url = documents
    server.headers.append(("Cache-Control", "public, max-age=600"))
    fetched = loopback_fetcher().fetch(url, 1024, json_type=True)
    assert fetched.document == {"ok": True}
    assert fetched.max_age == 600


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"body": b'{"pad": "' + b"x" * 2000 + b'"}'}, "larger than 1024 bytes", id="too-large"),
        pytest.param({"delay": 1.5}, "timed out", id="slow"),
        pytest.param(
            {"status": "302 Found", "headers": [("Location", "https://example.com/doc.json")]},
            "HTTP 302",
            id="redirect",
        ),
        pytest.param({"status": "404 Not Found"}, "HTTP 404", id="not-found"),
        pytest.param({"body": b"<html>hello</html>"}, "not JSON", id="non-json-body"),
        pytest.param({"body": b'{"a": NaN}'}, "not JSON", id="nan"),
        pytest.param({"headers": [("Content-Type", "text/html")]}, "not JSON", id="non-json-type"),
    ],
)
def test_answers_that_are_refused(documents, change, reason):
    server, url = documents
    for name, value in change.items():
        setattr(server, name, value)
    with pytest.raises(FetchError, match=reason):
        loopback_fetcher(timeout=1.0).fetch(url, 1024, json_type=True)


def test_a_redirect_is_never_followed(documents):
    server, url = documents
    server.status, server.headers = "301 Moved Permanently", [("Location", url + "?again")]
    with pytest.raises(FetchError, match="HTTP 301"):
        loopback_fetcher().fetch(url, 1024)
    assert server.hits == 1


def test_a_trickled_answer_is_cut_at_one_deadline_for_the_whole_exchange():
    # Each byte arrives well within the timeout; the whole answer does not.
    with trickling_server(0.1) as url:
        started = time.monotonic()
        with pytest.raises(FetchError, match="timed out"):
            loopback_fetcher(timeout=1.0).fetch(url, 1024)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://10.0.0.1/doc.json", id="private"),
        pytest.param("https://127.0.0.1/doc.json", id="loopback"),
        pytest.param("https://localhost/doc.json", id="loopback-name"),
        pytest.param("https://169.254.169.254/latest/meta-data", id="link-local-metadata"),
        pytest.param("https://100.64.0.1/doc.json", id="shared"),
        pytest.param("https://224.0.0.1/doc.json", id="multicast"),
        pytest.param("https://240.0.0.1/doc.json", id="reserved"),
        pytest.param("https://0.0.0.0/doc.json", id="unspecified"),
        pytest.param("https://[::1]/doc.json", id="ipv6-loopback"),
        pytest.param("https://[fe80::1]/doc.json", id="ipv6-link-local"),
        pytest.param("https://[fd00::1]/doc.json", id="ipv6-unique-local"),
        pytest.param("https://[::ffff:127.0.0.1]/doc.json", id="ipv4-mapped-loopback"),
    ],
)
def test_special_use_addresses_are_refused_before_any_connection(url):
    with pytest.raises(FetchError, match="special-use address"):
        Fetcher(timeout=1).fetch(url, 1024)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param("ftp://example.com/doc.json", "http", id="scheme"),
        pytest.param("file:///etc/passwd", "http", id="file"),
        pytest.param("https://user:pw@example.com/doc.json", "user info", id="user-info"),
        pytest.param("https://example.com/a b", "http", id="space"),
        pytest.param("https://example.com:99999/doc.json", "bad port", id="port"),
    ],
)
def test_urls_that_are_refused(url, reason):
    with pytest.raises(FetchError, match=reason):
        Fetcher(timeout=1).fetch(url, 1024)


def test_loopback_is_fetched_only_when_allowed(documents):
    _, url = documents
    with pytest.raises(FetchError, match="special-use address"):
        Fetcher(timeout=2).fetch(url, 1024)
    assert loopback_fetcher().fetch(url, 1024).document == {"ok": True}


def test_plain_http_is_only_for_an_allowed_loopback_address():
    # 10.0.0.0/8 allowed does not make plain http to it acceptable.
    fetcher = Fetcher(timeout=1, allowed=(ipaddress.ip_network("10.0.0.0/8"),))
    with pytest.raises(FetchError, match="plain http"):
        fetcher.fetch("http://10.0.0.1/doc.json", 1024)


def test_the_checked_address_is_the_one_connected_to(documents, monkeypatch):
    """DNS rebinding: a name resolved once is connected to at that address, never resolved again."""
    _, url = documents
    port = int(url.split(":")[2].split("/")[0])
    answers = iter(["127.0.0.1", "10.0.0.1"])
    real = socket.getaddrinfo

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "rebind.example":
            return real(host, *args, **kwargs)  # the connection itself, to an address
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    fetched = loopback_fetcher().fetch(f"http://rebind.example:{port}/doc.json", 1024)
    assert fetched.document == {"ok": True}  # a second resolution would have said 10.0.0.1


def test_a_name_with_one_forbidden_address_is_refused(monkeypatch):
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(FetchError, match=r"special-use address \(192\.168\.1\.1\)"):
        Fetcher(timeout=1).fetch("https://mixed.example/doc.json", 1024)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("max-age=600", 600, id="max-age"),
        pytest.param('public, max-age="60"', 60, id="quoted"),
        pytest.param("no-store", 0, id="no-store"),
        pytest.param("max-age=600, no-cache", 0, id="no-cache"),
        pytest.param("max-age=soon", None, id="garbage"),
        pytest.param("", None, id="absent"),
    ],
)
def test_cache_control(header, expected):
    assert max_age(header) == expected


# -- a client's jwks_uri goes through the same fetcher ------------------------


def test_a_client_jwks_uri_on_loopback_is_refused_unless_allowed(make_middleware, documents):
    """The address rule holds at the token endpoint: the assertion's keys are not fetched (503)."""
    from test_client_assertions import CLIENT, JWK, assertion, form

    server, url = documents
    server.body = json.dumps({"keys": [JWK]}).encode()
    middleware = make_middleware()
    register(middleware, CLIENT, None, grant_types=["client_credentials"], scopes=["read"], jwks_uri=url)
    response = webtest.TestApp(middleware).post("/oauth/token", form(assertion()), status=503)
    assert response.json["error"] == "temporarily_unavailable"
    assert server.hits == 0
    allowed = make_middleware(fetch_allowed_networks="127.0.0.1")
    register(allowed, CLIENT, None, grant_types=["client_credentials"], scopes=["read"], jwks_uri=url)
    assert webtest.TestApp(allowed).post("/oauth/token", form(assertion())).json["token_type"] == "Bearer"


# -- https: the certificate is checked against the URL's host ------------------


@pytest.fixture
def tls_documents(tmp_path) -> Iterator[tuple[str, str]]:
    """An https server on 127.0.0.1 with a self-signed certificate; its URL and the certificate file."""
    import datetime
    import http.server
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"tls": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/doc.json", str(cert_file)
    finally:
        server.shutdown()
        server.server_close()


def test_https_is_fetched_only_from_a_trusted_certificate(tls_documents):
    import ssl

    url, cert_file = tls_documents
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
        loopback_fetcher().fetch(url, 1024)
    trusting = Fetcher(timeout=2, allowed=LOOPBACK, context=ssl.create_default_context(cafile=cert_file))
    assert trusting.fetch(url, 1024, json_type=True).document == {"tls": True}
