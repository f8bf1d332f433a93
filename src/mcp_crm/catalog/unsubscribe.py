"""`/unsubscribe/<token>` on the HTTP app: the one-click unsubscribe link of sent messages (RFC 8058).

A POST (what a mail client sends, `List-Unsubscribe=One-Click`, or the page's button) opts the contact out of
email. A GET only shows a page with that button: link checkers and previews open links, and must not unsubscribe
anyone."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from mcp.server import MCPServer
from starlette.requests import Request
from starlette.responses import Response

from mcp_crm.catalog.consent_page import page
from mcp_crm.errors import CrmError
from mcp_crm.mail import unsubscribe as links
from mcp_crm.operations import Crm

INVALID = "This unsubscribe link is not valid (it may have been cut short when it was copied)."
GONE = "The sender no longer keeps this address among its contacts: there was nothing to unsubscribe."


def add_unsubscribe_routes(server: MCPServer[Any], crm: Callable[[], Crm | None]) -> None:
    async def handle(request: Request) -> Response:
        opened = crm()
        if opened is None:
            return page("Unsubscribe", "<p>The server is starting; try again in a moment.</p>", 503)
        given = request.path_params["token"]
        try:
            if request.method == "POST":
                found = await links.unsubscribe(opened, given)
            else:
                found = await links.look_up(opened, given)
        except CrmError:  # the contact was deleted meanwhile
            return page("Unsubscribe", f"<h1>Unsubscribe</h1><p>{escape(GONE)}</p>")
        return _shown(found, request.url.path)

    server.custom_route(f"{links.PATH}/{{token}}", methods=["GET", "POST"])(handle)


def _shown(found: links.Found, path: str) -> Response:
    sender = escape(found.workspace)
    if found.state == "invalid":
        return page("Unsubscribe", f"<h1>Unsubscribe</h1><p>{escape(INVALID)}</p>", 404)
    if found.state == "gone":
        return page("Unsubscribe", f"<h1>Unsubscribe</h1><p>{escape(GONE)}</p>")
    if found.state == "opted_out":
        return page("Unsubscribed", f"<h1>You are unsubscribed</h1><p>{sender} will send you no more emails.</p>")
    form = (
        f'<form method="post" action="{escape(path)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<button>Unsubscribe</button></form>"
    )
    return page("Unsubscribe", f"<h1>Unsubscribe</h1><p>Stop emails from {sender} to this address?</p>{form}")
