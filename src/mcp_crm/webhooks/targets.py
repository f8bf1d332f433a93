"""Where webhooks may go: public https addresses only, unless the server runs with --allow-local-webhooks.

A URL is checked twice: its shape (`check_url`, when a subscription is saved) and the addresses its host resolves
to (`resolve`, before each delivery). The sender then connects to the checked address (`pinned_request`), so a DNS
answer that changes between the check and the connect (DNS rebinding) cannot redirect the request.

The address check (`checked_addresses`) also guards SMTP connections set up and used over HTTP (mail/sending.py)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import idna

MAX_URL_LENGTH = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})

VALID = (
    "webhooks go only to public https addresses (start the server with --allow-local-webhooks to allow local "
    "and private targets, for tests or a local n8n)."
)
VALID_LOCAL = "webhooks go to http:// and https:// URLs."

IPAddress = IPv4Address | IPv6Address

# Checked explicitly because `is_global` (Python 3.11) says True for multicast, NAT64, 6to4 and site-local forms.
_PRIVATE = tuple(ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
_THIS_NETWORK = ip_network("0.0.0.0/8")
_SHARED = ip_network("100.64.0.0/10")
_NAT64 = ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ip_network("64:ff9b:1::/48")


class TargetRefused(ValueError):
    """A webhook URL the server will not send to; the message is meant for the person who entered it."""


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    scheme: str
    addresses: tuple[str, ...]


def _shown(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."


def check_url(url: str, allow_local: bool) -> str:
    """Return `url` normalised (lower-case scheme and host, punycode, `/` for an empty path, no fragment).

    Cloud metadata host names are refused here already, without a DNS lookup."""
    valid = VALID_LOCAL if allow_local else VALID
    url = url.strip()
    if not url:
        raise TargetRefused(f"The webhook URL is empty; {valid}")
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"The webhook URL is {len(url)} characters long; the limit is {MAX_URL_LENGTH}.")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise TargetRefused(f"The webhook URL {_shown(url)!r} contains spaces or control characters; {valid}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"{_shown(url)} is not a valid URL ({exc}); {valid}") from None
    scheme = parts.scheme.lower()
    allowed = ("http", "https") if allow_local else ("https",)
    if scheme not in allowed:
        what = f"starts with {scheme}://" if scheme else "does not start with https://"
        raise TargetRefused(f"{_shown(url)} {what}; {valid}")
    if "@" in parts.netloc:
        # The URL is not echoed: the part before @ may be a password.
        raise TargetRefused(
            "The webhook URL contains a user name or password (user:pass@host), which is not allowed; "
            "put credentials in the path or query instead, or verify the webhook signature."
        )
    if not parts.hostname:
        raise TargetRefused(f"{_shown(url)} has no host name; a webhook URL looks like https://example.com/hook.")
    if port == 0:
        raise TargetRefused(f"{_shown(url)} has port 0; use a port from 1 to 65535, or none for the default.")
    host = _normalised_host(parts.hostname, url, valid)
    if not allow_local and host.rstrip(".") in METADATA_HOSTS:
        raise TargetRefused(f"{_shown(url)} points at a cloud metadata service; {VALID}")
    literal = f"[{host}]" if ":" in host else host
    netloc = literal if port in (None, DEFAULT_PORTS[scheme]) else f"{literal}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _normalised_host(host: str, url: str, valid: str) -> str:
    try:
        return str(ip_address(host))
    except ValueError:
        pass
    try:
        return host.lower() if host.isascii() else idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise TargetRefused(f"{_shown(url)} has an invalid host name {host!r}; {valid}") from None


async def _addresses(host: str, port: int) -> list[str]:
    """The resolver, kept as one module-level function so tests can replace it."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve(url: str, allow_local: bool) -> Target:
    url = check_url(url, allow_local)
    parts = urlsplit(url)
    scheme = parts.scheme
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[scheme]
    addresses = await checked_addresses(host, port, allow_local, _shown(url), VALID)
    return Target(url=url, host=host, port=port, scheme=scheme, addresses=addresses)


async def checked_addresses(host: str, port: int, allow_local: bool, what: str, valid: str) -> tuple[str, ...]:
    """The addresses `host` resolves to (an IP literal: itself), in the resolver's order without repeats, every one
    public unless `allow_local`. TargetRefused says why not, naming the target as `what` (a URL, "SMTP host x")
    and ending with `valid` (where such targets may go). Shared by webhooks and SMTP connections."""
    if not allow_local and host.lower().rstrip(".") in METADATA_HOSTS:
        raise TargetRefused(f"{what} points at a cloud metadata service; {valid}")
    try:
        addresses = [str(ip_address(host))]
    except ValueError:
        try:
            addresses = await _addresses(host, port)
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(
                f"{what}: the host name {_shown(host)} could not be resolved ({exc}); check the spelling, "
                "or try again later if the name was just created."
            ) from None
    addresses = list(dict.fromkeys(addresses))
    if not addresses:
        raise TargetRefused(
            f"{what}: the host name {_shown(host)} has no address; check the spelling, "
            "or try again later if the name was just created."
        )
    if not allow_local:
        for address in addresses:
            kind = non_public_kind(ip_address(address))
            if kind is not None:
                raise TargetRefused(f"{what} resolves to {address}, {kind}; {valid}")
    return tuple(addresses)


def non_public_kind(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast address ("a private address", ...), or None when it is public."""
    if isinstance(address, IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            kind = non_public_kind(embedded)
            return None if kind is None else f"IPv4 {embedded} in IPv6 form, {kind}"
        if address in _LOCAL_NAT64:
            return "a local-use NAT64 address"
        if address.is_site_local:
            return "a site-local address"
    if address.is_unspecified or address in _THIS_NETWORK:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if address in _SHARED:
        return "a shared address (carrier-grade NAT, where some cloud metadata services live)"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in _PRIVATE if network.version == address.version):
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a special-purpose (non-public) address"
    return None


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def pinned_request(target: Target) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL, headers and httpx `extensions` that send the request to `target.addresses[0]`, the checked address.

    For https, the `sni_hostname` extension makes httpcore use the real host name for SNI and for the certificate
    host name check. Senders must not share keep-alive connections across hosts: the pool is keyed by the URL's
    address, not by `sni_hostname` (use a fresh client per delivery, or `max_keepalive_connections=0`)."""
    address = ip_address(target.addresses[0])
    literal = f"[{address}]" if address.version == 6 else str(address)
    default = target.port == DEFAULT_PORTS[target.scheme]
    host = f"[{target.host}]" if ":" in target.host else target.host
    parts = urlsplit(target.url)
    netloc = literal if default else f"{literal}:{target.port}"
    url = urlunsplit((target.scheme, netloc, parts.path, parts.query, ""))
    headers = {"Host": host if default else f"{host}:{target.port}"}
    extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return url, headers, extensions
