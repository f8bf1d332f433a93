"""Streamable HTTP at /mcp with /health, on loopback (authentication arrives with hosted mode)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from mcp_crm.catalog.server import build_server


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_http_app(database_url: str, host: str = "127.0.0.1") -> Starlette:
    if not is_loopback(host):
        raise ValueError(
            f"Refusing to serve on {host}: without authentication the CRM may only listen on a loopback "
            "address (127.0.0.1, ::1 or localhost)."
        )
    return build_server(database_url, via="http").streamable_http_app(
        streamable_http_path="/mcp", host=host, transport_security=loopback_only(host)
    )


def loopback_only(host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection for any loopback bind (the SDK turns it on by itself only for the three
    usual spellings): Host and Origin must name a loopback address."""
    names = {"127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host else host}
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{n}:*" for n in sorted(names)],
        allowed_origins=[f"http://{n}:*" for n in sorted(names)],
    )


def serve_http(database_url: str, host: str, port: int, announce: Callable[[str], None]) -> None:
    app = build_http_app(database_url, host)
    shown = f"[{host}]" if ":" in host else host
    announce(f"streamable HTTP at http://{shown}:{port}/mcp (health: /health)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
