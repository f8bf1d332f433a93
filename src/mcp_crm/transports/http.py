"""Streamable HTTP at /mcp with /health: API keys required by default, DNS-rebinding protection, a per-credential
rate limit, and optionally stateless for replicas behind a load balancer."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from mcp_crm.catalog.server import build_server
from mcp_crm.catalog.tools import CrmTool
from mcp_crm.runtime import settle
from mcp_crm.transports.limits import RateLimit

DEFAULT_PORT = 8765
SCHEMES = ("http", "https")


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    auth: bool = True
    public_url: str | None = None  # how clients reach the server; default http://host:port
    allowed_hosts: Sequence[str] = ()  # Host header values accepted besides loopback names
    stateless: bool = False
    rate_limit: int = 600  # requests per minute per credential (or client address without one); 0: no limit
    tools: Sequence[CrmTool] | None = field(default=None, compare=False)
    worker: bool = True  # deliver webhooks and empty the trash in this process
    allow_local_webhooks: bool = False
    allow_local_smtp: bool = False  # email connections may reach loopback and private addresses

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return (self.public_url or f"http://{shown}:{self.port}").rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_http_app(database_url: str, options: HttpOptions) -> ASGIApp:
    if not options.auth and not is_loopback(options.host):
        raise ValueError(
            f"Refusing to serve on {options.host} without authentication: --no-auth is only for a loopback "
            "address (127.0.0.1, ::1 or localhost). Drop --no-auth and give clients API keys (mcp-crm keys create)."
        )
    if not is_loopback(options.host) and not options.allowed_hosts:
        raise ValueError(
            f"Serving on {options.host}: name the host names clients use with --allowed-host "
            "(e.g. --allowed-host crm.example.com), so requests for any other host are refused."
        )
    server = build_server(
        database_url,
        via="http",
        public_url=options.url if options.auth else None,
        tools=options.tools,
        worker=options.worker,
        allow_local_webhooks=options.allow_local_webhooks,
        allow_local_smtp=options.allow_local_smtp,
    )
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        host=options.host,
        stateless_http=options.stateless,
        transport_security=host_check(options),
    )
    # per credential: without authentication (one local user on loopback) there is nothing to share fairly
    return RateLimit(app, options.rate_limit) if options.rate_limit and options.auth else app


def host_check(options: HttpOptions) -> TransportSecuritySettings:
    """DNS-rebinding protection: the Host header must name this server (a loopback name, or one given with
    --allowed-host) and a browser's Origin must be one of those too."""
    host = options.host
    names = {f"[{host}]" if ":" in host else host, *options.allowed_hosts}
    if is_loopback(host):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{n}{port}" for n in sorted(names) for port in ("", ":*")],
        allowed_origins=[
            f"{scheme}://{n}{port}" for n in sorted(names) for scheme in ("http", "https") for port in ("", ":*")
        ],
    )


def serve_http(database_url: str, options: HttpOptions, announce: Callable[[str], None]) -> None:
    app = build_http_app(database_url, options)
    settle()
    if not options.auth:
        announce("WARNING: --no-auth: anyone on this machine can read and change the CRM without a key.")
    mode = "stateless " if options.stateless else ""
    announce(f"{mode}streamable HTTP at {options.url}/mcp (health: /health)")
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning")
