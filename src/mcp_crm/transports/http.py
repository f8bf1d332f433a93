"""Streamable HTTP at /mcp with /health, on loopback (authentication arrives with hosted mode)."""

from __future__ import annotations

import ipaddress

import uvicorn
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
    # DNS-rebinding protection stays on: only loopback Host/Origin headers are accepted.
    return build_server(database_url, via="http").streamable_http_app(streamable_http_path="/mcp", host=host)


def serve_http(database_url: str, host: str, port: int) -> None:
    app = build_http_app(database_url, host)
    uvicorn.run(app, host=host, port=port, log_level="warning")
