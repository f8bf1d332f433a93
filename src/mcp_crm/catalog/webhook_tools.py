"""Webhook tools: subscriptions, a test ping, and the delivery log with resends. All need the admin scope."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_crm.catalog.models import NoArguments, ToolInput
from mcp_crm.catalog.tools import DELETE, READ, UPDATE, WRITE, AppState, CrmTool, make_tool
from mcp_crm.operations import Actor
from mcp_crm.operations.reads import DEFAULT_LIMIT, MAX_LIMIT
from mcp_crm.operations.webhooks import STATUSES
from mcp_crm.webhooks.events import ACTIONS

ID = r"^[0-9a-f-]{36}$"
EVENTS_HELP = (
    f"Event names <entity>.<action> (singular entity; action {', '.join(ACTIONS)}), e.g. contact.created, "
    'deal.updated; also deal.moved, lead.moved and lead.converted; "deal.*" for all of one entity\'s, or ["*"] '
    "for every event."
)
SIGNING = (
    "Each POST carries Webhook-Id (the same on every attempt: deduplicate by it), Webhook-Timestamp and "
    "Webhook-Signature (v1,<base64 HMAC-SHA256 of 'id.timestamp.body'>, the Standard Webhooks scheme)."
)


class WebhookId(ToolInput):
    webhook_id: str = Field(pattern=ID, description="The webhook's id (webhooks_list).")


class WebhookCreateInput(ToolInput):
    url: str = Field(max_length=2000, description="Where to POST events: a public https URL.")
    events: list[str] = Field(min_length=1, max_length=100, description=EVENTS_HELP)
    description: str | None = Field(None, max_length=500, description="What it is for, e.g. 'n8n: new deals'.")


class WebhookUpdateInput(WebhookId):
    url: str | None = Field(None, max_length=2000, description="A new https URL.")
    events: list[str] | None = Field(None, min_length=1, max_length=100, description=EVENTS_HELP)
    description: str | None = Field(None, max_length=500)
    active: bool | None = Field(
        None, description="false pauses it (events meanwhile are not queued for it); true turns it back on."
    )


class Webhook(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    active: bool = Field(description="false: paused by an admin, or turned off after failing for days.")
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None = Field(description="When its current run of failed deliveries began.")
    disabled_reason: str | None = Field(description="Why it was turned off, when the dispatcher did it.")


class WebhookWithSecret(Webhook):
    secret: str = Field(description="The signing secret (whsec_...). Shown only now: store it in the receiver.")


class WebhookRotated(WebhookWithSecret):
    previous_secret_expires_at: datetime = Field(description="Until then the old secret also signs each event.")


class Attempt(BaseModel):
    attempt: int
    started_at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null when it could not be reached.")
    latency_ms: int
    error: str | None
    response: str | None = Field(description="The start of the response body.")


class Delivery(BaseModel):
    id: str = Field(description="The message id receivers see as Webhook-Id.")
    webhook_id: str
    event: str
    change_id: str | None = Field(description="The change it reports (audit_list), none for a ping.")
    status: Literal[STATUSES]  # type: ignore[valid-type]
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="When it is tried next, while pending.")
    delivered_at: datetime | None
    attempt_log: list[Attempt] = Field(description="Its latest attempts, oldest first.")


class WebhookDetail(Webhook):
    deliveries: dict[str, int] = Field(
        description="Its deliveries counted by status, and queued: events written but not yet taken up by a worker."
    )
    latest_delivery: Delivery | None


class Webhooks(BaseModel):
    items: list[Webhook]


class PingResult(BaseModel):
    delivery_id: str
    delivered: bool = Field(description="true when the receiver answered 2xx.")
    status_code: int | None
    latency_ms: int
    error: str | None
    response: str | None


class DeliveriesListInput(WebhookId):
    status: Literal[STATUSES] | None = Field(None, description="Only deliveries in this state.")  # type: ignore[valid-type]
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT}.")
    cursor: str | None = Field(None, pattern=ID, description="next_cursor from the previous page.")


class DeliveryPage(BaseModel):
    items: list[Delivery]
    has_more: bool
    next_cursor: str | None = None


class ResendInput(ToolInput):
    delivery_ids: list[str] = Field(min_length=1, max_length=100, description="Deliveries to send again.")


class Resent(BaseModel):
    items: list[Delivery]


def _dumped(model: type[BaseModel], value: dict[str, Any]) -> dict[str, Any]:
    return model.model_validate(value).model_dump(mode="json")


async def webhooks_create(s: AppState, a: Actor, args: WebhookCreateInput) -> dict[str, Any]:
    return _dumped(WebhookWithSecret, await s.crm.webhooks_create(a, args.url, args.events, args.description))


async def webhooks_list(s: AppState, a: Actor, args: NoArguments) -> dict[str, Any]:
    return _dumped(Webhooks, {"items": await s.crm.webhooks_list(a)})


async def webhooks_get(s: AppState, a: Actor, args: WebhookId) -> dict[str, Any]:
    return _dumped(WebhookDetail, await s.crm.webhooks_get(a, args.webhook_id))


async def webhooks_update(s: AppState, a: Actor, args: WebhookUpdateInput) -> dict[str, Any]:
    changes = args.model_dump(include=args.model_fields_set - {"webhook_id"})
    for name in ("url", "events", "active"):
        if name in changes and changes[name] is None:
            changes.pop(name)  # only the description can be cleared
    return _dumped(Webhook, await s.crm.webhooks_update(a, args.webhook_id, changes))


async def webhooks_delete(s: AppState, a: Actor, args: WebhookId) -> dict[str, Any]:
    return _dumped(Webhook, await s.crm.webhooks_delete(a, args.webhook_id))


async def webhooks_rotate_secret(s: AppState, a: Actor, args: WebhookId) -> dict[str, Any]:
    return _dumped(WebhookRotated, await s.crm.webhooks_rotate_secret(a, args.webhook_id))


async def webhooks_test(s: AppState, a: Actor, args: WebhookId) -> dict[str, Any]:
    return _dumped(PingResult, await s.crm.webhooks_test(a, args.webhook_id))


async def webhook_deliveries_list(s: AppState, a: Actor, args: DeliveriesListInput) -> dict[str, Any]:
    items, next_cursor = await s.crm.webhook_deliveries(a, args.webhook_id, args.status, args.limit, args.cursor)
    return _dumped(DeliveryPage, {"items": items, "has_more": next_cursor is not None, "next_cursor": next_cursor})


async def webhook_deliveries_resend(s: AppState, a: Actor, args: ResendInput) -> dict[str, Any]:
    return _dumped(Resent, {"items": await s.crm.webhook_deliveries_resend(a, args.delivery_ids)})


def webhook_tools() -> list[CrmTool]:
    def tool(name: str, title: str, description: str, handler: Any, arg: Any, out: Any, annotations: Any) -> CrmTool:
        return make_tool(name, title, description, handler, arg, out, annotations, admin=True)

    return [
        tool(
            "webhooks_create",
            "Subscribe a URL to events",
            "POST this workspace's events (a record created, updated, deleted or restored; a deal or lead moved; a "
            "lead converted) to a URL as they commit, retried for about a day until it answers 2xx. Returns the "
            f"signing secret once. {SIGNING} Example: url https://n8n.example.com/webhook/crm, events "
            '["deal.created", "deal.moved"]. Then webhooks_test sends a ping.',
            webhooks_create,
            WebhookCreateInput,
            WebhookWithSecret,
            WRITE,
        ),
        tool(
            "webhooks_list",
            "List webhooks",
            "The workspace's webhook subscriptions: URL, events, whether active and why not (never the secret).",
            webhooks_list,
            NoArguments,
            Webhooks,
            READ,
        ),
        tool(
            "webhooks_get",
            "Get a webhook",
            "One subscription, its deliveries counted by status and its latest delivery.",
            webhooks_get,
            WebhookId,
            WebhookDetail,
            READ,
        ),
        tool(
            "webhooks_update",
            "Change a webhook",
            "Change a subscription's url, events or description, or pause (active: false) and resume it "
            "(active: true, also for one turned off after failing; what waited is then sent).",
            webhooks_update,
            WebhookUpdateInput,
            Webhook,
            UPDATE,
        ),
        tool(
            "webhooks_delete",
            "Delete a webhook",
            "Stop sending to a subscription and erase it with its delivery log.",
            webhooks_delete,
            WebhookId,
            Webhook,
            DELETE,
        ),
        tool(
            "webhooks_rotate_secret",
            "Rotate a webhook's secret",
            "A new signing secret, returned once. For 24 hours each event is signed with both the old and the new "
            "secret, so the receiver can switch without missing one.",
            webhooks_rotate_secret,
            WebhookId,
            WebhookRotated,
            WRITE,
        ),
        tool(
            "webhooks_test",
            "Send a test event",
            "POST a signed ping event to the subscription now and report the answer: status, latency, error and "
            "the start of the response body.",
            webhooks_test,
            WebhookId,
            PingResult,
            WRITE,
        ),
        tool(
            "webhook_deliveries_list",
            "List webhook deliveries",
            "A subscription's deliveries, newest first: event, status (pending, sending, succeeded, failed), "
            "attempts with response status, latency and error, and the next attempt's time.",
            webhook_deliveries_list,
            DeliveriesListInput,
            DeliveryPage,
            READ,
        ),
        tool(
            "webhook_deliveries_resend",
            "Resend webhook deliveries",
            "Send deliveries again (failed or not), with the same Webhook-Id and body, after what is already queued.",
            webhook_deliveries_resend,
            ResendInput,
            Resent,
            WRITE,
        ),
    ]
