"""Unsubscribing from sends: the List-Unsubscribe headers every message carries, and one-click unsubscribe links.

Every message names a mailto unsubscribe address (the sender's, subject "unsubscribe"): such replies arrive in the
sender's mailbox and are acted on by hand. When the server has an https public URL (`mcp-crm serve --public-url`,
MCP_CRM_PUBLIC_URL), messages also carry an RFC 8058 one-click link, `<public URL>/unsubscribe/<token>`: a mail
client's POST there (or the button on the page a GET shows) sets the contact's email_opt_out, with the reason
"unsubscribe link". The token is the workspace id, the contact id and an HMAC of both with the workspace's secret
(kept in the database, so that every replica verifies what any other made)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from sqlalchemy import Connection, select

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import update_model_for
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import rows_by_id
from mcp_crm.store.tables import WORKSPACES

if TYPE_CHECKING:
    from mcp_crm.operations import Crm

PATH = "/unsubscribe"
REASON = "unsubscribe link"
ONE_CLICK = "List-Unsubscribe=One-Click"
CONTACTS = ENTITIES["contacts"]


def _signature(secret: str, workspace_id: str, contact_id: str) -> str:
    digest = hmac.new(secret.encode(), f"unsubscribe:{workspace_id}:{contact_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def token(secret: str, workspace_id: str, contact_id: str) -> str:
    return f"{workspace_id}.{contact_id}.{_signature(secret, workspace_id, contact_id)}"


def base_url(public_url: str | None) -> str | None:
    """Where one-click links start: the public URL when it is https (as RFC 8058 wants), else None (no links)."""
    if not public_url or not public_url.lower().startswith("https://"):
        return None
    return f"{public_url.rstrip('/')}{PATH}/"


def link(base: str | None, secret: str, workspace_id: str, contact_id: str | None) -> str | None:
    """The contact's one-click link under `base` (base_url), or None without a base or a contact."""
    if base is None or contact_id is None:
        return None
    return base + token(secret, workspace_id, contact_id)


def headers(from_address: str, one_click: str | None) -> list[tuple[str, str]]:
    """The List-Unsubscribe header (the mailto address, then the one-click link when there is one) and, with a
    link, List-Unsubscribe-Post. Each address on its own line: folding must never split or encode one."""
    mailto = f"<mailto:{quote(from_address, safe='@.+-_')}?subject=unsubscribe>"
    if one_click is None:
        return [("List-Unsubscribe", mailto)]
    return [("List-Unsubscribe", f"{mailto},\r\n <{one_click}>"), ("List-Unsubscribe-Post", ONE_CLICK)]


@dataclass(frozen=True)
class Found:
    """What a token leads to: `state` invalid (a bad or forged token, or the workspace is gone), gone (the contact
    was deleted), subscribed, or opted_out (already, or now)."""

    state: Literal["invalid", "gone", "subscribed", "opted_out"]
    workspace: str = ""  # the workspace's name, for the page


def _read(conn: Connection, given: str) -> tuple[Found, Actor | None]:
    parts = given.split(".")
    if len(parts) != 3 or not all(parts):
        return Found("invalid"), None
    workspace_id, contact_id, signature = parts
    workspace = conn.execute(
        select(WORKSPACES.c.name, WORKSPACES.c.secret).where(WORKSPACES.c.id == workspace_id)
    ).first()
    if workspace is None or not workspace.secret:
        return Found("invalid"), None
    if not hmac.compare_digest(signature.encode(), _signature(workspace.secret, workspace_id, contact_id).encode()):
        return Found("invalid"), None
    actor = Actor(workspace_id=workspace_id, user_id=None, via="http", tool="unsubscribe")
    contact = rows_by_id(conn, actor, CONTACTS, [contact_id]).get(contact_id)
    if contact is None:
        return Found("gone", workspace.name), None
    return Found("opted_out" if contact["email_opt_out"] else "subscribed", workspace.name), actor


async def look_up(crm: Crm, given: str) -> Found:
    """What the token `given` leads to; changes nothing (a GET, which link checkers also make)."""
    found, _ = await crm.db.read(lambda conn: _read(conn, given))
    return found


async def unsubscribe(crm: Crm, given: str) -> Found:
    """Sets email_opt_out (reason "unsubscribe link", the time stamped) on the token's contact, through the
    operations layer (audit log, timeline, webhooks); a contact already opted out keeps its reason and time."""
    found, actor = await crm.db.read(lambda conn: _read(conn, given))
    if found.state != "subscribed" or actor is None:
        return found
    contact_id = given.split(".")[1]
    changes = update_model_for(CONTACTS)(email_opt_out=True, email_opt_out_reason=REASON)
    await crm.update(actor, CONTACTS, contact_id, changes)
    return Found("opted_out", found.workspace)
