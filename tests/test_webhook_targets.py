"""Webhook targets: URL shape, refusal of every non-public address form (no internet needed: IP literals, `localhost`
and a patched resolver), and pinning, which sends the request to the address that was checked even when DNS
changes its answer afterwards (DNS rebinding)."""

import datetime
import http.server
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from mcp_crm.webhooks import targets
from mcp_crm.webhooks.targets import Target, TargetRefused, check_url, pinned_request, resolve

pytestmark = pytest.mark.anyio

HINT = "--allow-local-webhooks"


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Replace the resolver; return the list of host names it was asked for."""
    asked: list[str] = []

    async def addresses(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    monkeypatch.setattr(targets, "_addresses", addresses)
    return asked


# --- check_url ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("  HTTPS://Hooks.Example.COM/In?Key=V#frag ", "https://hooks.example.com/In?Key=V"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com:443/x", "https://example.com/x"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://bücher.example/hook", "https://xn--bcher-kva.example/hook"),
        ("https://[2001:DB8:0::1]:8443/", "https://[2001:db8::1]:8443/"),
    ],
)
def test_check_url_normalises(url, normalised):
    assert check_url(url, allow_local=False) == normalised


def test_http_needs_allow_local_and_other_schemes_never_pass():
    with pytest.raises(TargetRefused, match=f"starts with http://; webhooks go only to public https.*{HINT}"):
        check_url("http://example.com/hook", allow_local=False)
    assert check_url("http://example.com/hook", allow_local=True) == "http://example.com/hook"
    for url in ("ftp://example.com/", "file:///etc/passwd", "javascript:alert(1)", "example.com/hook"):
        with pytest.raises(TargetRefused, match="https://"):
            check_url(url, allow_local=True)


def test_userinfo_is_refused_without_echoing_the_password():
    with pytest.raises(TargetRefused, match=r"user name or password \(user:pass@host\)") as refused:
        check_url("https://admin:hunter2@example.com/hook", allow_local=True)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("https:///hook", "no host name"),
        ("https://example.com:0/", "port 0"),
        ("https://example.com:70000/", "not a valid URL"),
        ("https://[::1/", "not a valid URL"),
        ("https://exa mple.com/", "spaces or control characters"),
        ("https://example.com/\r\nX-Injected: 1", "spaces or control characters"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(url, reason):
    with pytest.raises(TargetRefused, match=reason):
        check_url(url, allow_local=True)


def test_urls_are_limited_to_2000_characters():
    base = "https://example.com/"
    assert check_url(base + "a" * (2000 - len(base)), allow_local=False).endswith("a")
    with pytest.raises(TargetRefused, match="2001 characters long; the limit is 2000"):
        check_url(base + "a" * (2001 - len(base)), allow_local=False)


@pytest.mark.parametrize("host", ["metadata.google.internal", "METADATA.google.internal.", "metadata", "instance-data"])
def test_metadata_host_names_are_refused_before_any_lookup(host):
    with pytest.raises(TargetRefused, match="cloud metadata service"):
        check_url(f"https://{host}/computeMetadata/v1/", allow_local=False)
    assert check_url(f"http://{host}/", allow_local=True).startswith("http://")


# --- resolve: which addresses are refused ------------------------------------------------------------------------

NON_PUBLIC = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "10.0.0.5": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "100.64.0.1": "shared",
    "100.100.100.200": "shared",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "unspecified",
    "192.0.2.1": "non-public",
    "198.18.0.1": "non-public",
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "ff02::1": "multicast",
    "fec0::1": "site-local",
    "2001:db8::1": "non-public",
    "::127.0.0.1": "reserved",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.5": "private",
    "::ffff:169.254.169.254": "link-local",
    "64:ff9b::a9fe:a9fe": "link-local",
    "64:ff9b::7f00:1": "loopback",
    "64:ff9b::6464:64c8": "shared",
    "64:ff9b:1::a9fe:a9fe": "local-use NAT64",
    "2002:a9fe:a9fe::": "link-local",
    "2002:7f00:1::1": "loopback",
    "2002:c0a8:101::": "private",
}


@pytest.mark.parametrize(("address", "kind"), NON_PUBLIC.items(), ids=NON_PUBLIC.keys())
async def test_non_public_ip_literals_are_refused(monkeypatch, address, kind):
    asked = fake_dns(monkeypatch, {})
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(TargetRefused, match=f"resolves to .*{kind}.*{HINT}"):
        await resolve(f"https://{host}/hook", allow_local=False)
    target = await resolve(f"https://{host}/hook", allow_local=True)
    assert target.addresses == (str(targets.ip_address(address)),)
    assert asked == [], "an IP literal needs no lookup"


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"]
)
async def test_public_ip_literals_are_accepted(address):
    host = f"[{address}]" if ":" in address else address
    target = await resolve(f"https://{host}:8443/hook", allow_local=False)
    assert target == Target(
        url=f"https://{host}:8443/hook".replace(address, str(targets.ip_address(address))),
        host=str(targets.ip_address(address)),
        port=8443,
        scheme="https",
        addresses=(str(targets.ip_address(address)),),
    )


async def test_a_private_ip_message_reads_as_documented():
    with pytest.raises(TargetRefused) as refused:
        await resolve("https://10.0.0.5/hook", allow_local=False)
    assert str(refused.value) == (
        "https://10.0.0.5/hook resolves to 10.0.0.5, a private address; webhooks go only to public https addresses "
        "(start the server with --allow-local-webhooks to allow local and private targets, for tests or a local n8n)."
    )


async def test_localhost_is_refused_unless_local_targets_are_allowed():
    with pytest.raises(TargetRefused, match=f"resolves to .*loopback.*{HINT}"):
        await resolve("https://localhost:8443/hook", allow_local=False)
    target = await resolve("http://localhost:5678/webhook/abc", allow_local=True)
    assert target.host == "localhost"
    assert target.port == 5678
    assert all(targets.ip_address(a).is_loopback for a in target.addresses)


async def test_numeric_host_spellings_are_judged_by_the_address_they_reach():
    with pytest.raises(TargetRefused, match=re.escape("resolves to 127.0.0.1, a loopback address")):
        await resolve("https://2130706433/hook", allow_local=False)


async def test_a_name_that_resolves_to_a_private_address_is_refused(monkeypatch):
    asked = fake_dns(monkeypatch, {"hooks.example.com": ["10.1.2.3"]})
    with pytest.raises(TargetRefused, match=f"hooks.example.com/in resolves to 10.1.2.3, a private address.*{HINT}"):
        await resolve("https://hooks.example.com/in", allow_local=False)
    assert asked == ["hooks.example.com"]


async def test_one_non_public_address_among_public_ones_is_enough_to_refuse(monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::", "169.254.169.254"]})
    with pytest.raises(TargetRefused, match=re.escape("resolves to 169.254.169.254, a link-local address")):
        await resolve("https://hooks.example.com/in", allow_local=False)


async def test_a_public_name_keeps_every_checked_address_once(monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::", "93.184.216.34"]})
    target = await resolve("https://hooks.example.com/in", allow_local=False)
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1::")


async def test_a_name_that_does_not_resolve_is_refused_clearly(monkeypatch):
    fake_dns(monkeypatch, {"empty.example.com": []})
    with pytest.raises(TargetRefused, match=re.escape("the host name nowhere.example.com could not be resolved")):
        await resolve("https://nowhere.example.com/in", allow_local=True)
    with pytest.raises(TargetRefused, match=re.escape("the host name empty.example.com has no address")):
        await resolve("https://empty.example.com/in", allow_local=True)


# --- pinning -----------------------------------------------------------------------------------------------------


async def test_pinning_uses_the_checked_address_even_if_dns_changes_afterwards(monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.com": ["93.184.216.34"]})
    target = await resolve("https://hooks.example.com/in?k=1", allow_local=False)
    asked_later = fake_dns(monkeypatch, {"hooks.example.com": ["127.0.0.1"]})  # the rebinding answer

    url, headers, extensions = pinned_request(target)

    assert url == "https://93.184.216.34/in?k=1"
    assert headers == {"Host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}
    assert asked_later == [], "pinned_request must not look the name up again"


async def test_pinning_brackets_ipv6_and_keeps_a_non_default_port(monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.com": ["2606:2800:220:1::", "93.184.216.34"]})
    target = await resolve("https://hooks.example.com:8443/in", allow_local=False)
    assert pinned_request(target) == (
        "https://[2606:2800:220:1::]:8443/in",
        {"Host": "hooks.example.com:8443"},
        {"sni_hostname": "hooks.example.com"},
    )


async def test_plain_http_pins_without_tls_extensions():
    target = await resolve("http://[::1]:5678/webhook", allow_local=True)
    assert pinned_request(target) == ("http://[::1]:5678/webhook", {"Host": "[::1]:5678"}, {})


# --- pinning against real servers --------------------------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append({"host": self.headers["Host"], "path": self.path, "body": body.decode()})
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(tls: ssl.SSLContext | None, seen: list[dict[str, str]]) -> Iterator[int]:
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def seen() -> list[dict[str, str]]:
    return []


@pytest.fixture
def http_port(seen) -> Iterator[int]:
    yield from serve(None, seen)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for hook.test only (not for 127.0.0.1)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "hook.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hook.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def https_port(certificate, seen) -> Iterator[int]:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*certificate)
    yield from serve(tls, seen)


async def test_httpx_sends_the_pinned_request_to_the_checked_address_with_the_real_host(monkeypatch, http_port, seen):
    fake_dns(monkeypatch, {"n8n.test": ["127.0.0.1"]})
    target = await resolve(f"http://n8n.test:{http_port}/webhook/abc?x=1", allow_local=True)
    fake_dns(monkeypatch, {"n8n.test": ["192.0.2.1"]})  # a later answer must not matter
    url, headers, extensions = pinned_request(target)
    async with httpx2.AsyncClient(trust_env=False, timeout=5) as client:
        response = await client.post(url, headers=headers, extensions=extensions, content=b'{"a": 1}')
    assert response.status_code == 204
    assert seen == [{"host": f"n8n.test:{http_port}", "path": "/webhook/abc?x=1", "body": '{"a": 1}'}]


async def test_over_https_the_certificate_is_checked_against_the_real_host_name(
    monkeypatch, certificate, https_port, seen
):
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    fake_dns(monkeypatch, {"hook.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})

    async def post(host: str, pin_sni: bool = True) -> int:
        target = await resolve(f"https://{host}:{https_port}/in", allow_local=True)
        url, headers, extensions = pinned_request(target)
        assert url == f"https://127.0.0.1:{https_port}/in"
        # A fresh client per delivery: the connection pool is keyed by address, not by sni_hostname.
        async with httpx2.AsyncClient(verify=trusted, trust_env=False, timeout=5) as client:
            sent = await client.post(url, headers=headers, extensions=extensions if pin_sni else {}, content=b"{}")
        return sent.status_code

    assert await post("hook.test") == 204
    assert seen == [{"host": f"hook.test:{https_port}", "path": "/in", "body": "{}"}]
    with pytest.raises(httpx2.ConnectError, match=re.escape("not valid for 'other.test'")):
        await post("other.test")
    with pytest.raises(httpx2.ConnectError, match=re.escape("not valid for '127.0.0.1'")):
        await post("hook.test", pin_sni=False)
    assert len(seen) == 1
