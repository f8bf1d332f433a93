"""Email tools: SMTP connections (admin) and email_send, which writes to a contact, a lead or a list and records
each message as an email activity on the person's timeline. email_send needs the send scope (no other) for every
call, a dry run too (one tool has one set of scopes); the write scope alone does not let a key email anyone."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from mcp_crm.catalog.models import NoArguments, ToolInput
from mcp_crm.catalog.tools import DELETE, READ, UPDATE, WRITE, AppState, CrmTool, make_tool, request_of
from mcp_crm.mail.render import FIELDS
from mcp_crm.mail.sending import SHOWN
from mcp_crm.operations import Actor
from mcp_crm.operations.preview import CONFIRM_ABOVE

ID = r"^[0-9a-f-]{36}$"
TLS = Literal["starttls", "ssl", "none"]
MERGE_HELP = (
    f"Merge fields: {', '.join('{{' + f + '}}' for f in FIELDS)}; add a fallback for people without a value, "
    "e.g. {{first_name|there}} (without one, such people are skipped). An unknown field is an error."
)


class ConnectionId(ToolInput):
    connection_id: str = Field(pattern=ID, description="The connection's id (email_connections_list).")


class ConnectionCreateInput(ToolInput):
    name: str | None = Field(
        None, max_length=200, description="What to call it, e.g. Sales; the from address if left out."
    )
    host: str = Field(min_length=1, max_length=253, description="The SMTP server, e.g. smtp.gmail.com.")
    port: int = Field(587, ge=1, le=65535, description="587 for starttls, 465 for ssl, 25 for none.")
    tls: TLS = Field("starttls", description="starttls (port 587), ssl (port 465) or none (a relay on this machine).")
    username: str | None = Field(None, max_length=320, description="The login; leave out for a server without one.")
    password: SecretStr | None = Field(
        None, description="The login's password (some providers want an app password). Stored encrypted; never shown."
    )
    from_address: str = Field(max_length=320, description="The sender address, e.g. ada@acme.com.")
    from_name: str | None = Field(None, max_length=200, description="The sender name, e.g. Ada at Acme.")
    daily_limit: int = Field(200, ge=1, le=100_000, description="At most this many messages per day (UTC).")


class ConnectionUpdateInput(ConnectionId):
    name: str | None = Field(None, min_length=1, max_length=200)
    host: str | None = Field(None, min_length=1, max_length=253)
    port: int | None = Field(None, ge=1, le=65535)
    tls: TLS | None = None
    username: str | None = Field(None, max_length=320, description="null removes the login (and the password).")
    password: SecretStr | None = Field(None, description="A new password; null removes it.")
    from_address: str | None = Field(None, max_length=320)
    from_name: str | None = Field(None, max_length=200, description="null removes it.")
    daily_limit: int | None = Field(None, ge=1, le=100_000)


class EmailConnection(BaseModel):
    id: str
    name: str
    host: str
    port: int
    tls: str
    username: str | None
    has_password: bool = Field(description="Whether a password is stored (it is never shown).")
    from_address: str
    from_name: str | None
    daily_limit: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class EmailConnections(BaseModel):
    items: list[EmailConnection]


class DailyUsage(BaseModel):
    limit: int
    used_today: int = Field(description="Messages handed to the server since 00:00 UTC.")
    remaining_today: int
    resets_at: datetime


class RecentSend(BaseModel):
    id: str
    created_at: datetime
    subject: str
    to: dict[str, str]
    finished_at: datetime | None = Field(description="null while messages wait or are being sent.")
    messages: dict[str, int] = Field(description="Messages by status: sent, failed, unknown, held, skipped, ...")


class EmailConnectionDetail(EmailConnection):
    daily_usage: DailyUsage
    recent_sends: list[RecentSend] = Field(description="Its latest sends, newest first.")


class ConnectionTest(BaseModel):
    ok: bool = Field(description="true: the server answered and accepted the login.")
    error: str | None = Field(description="What went wrong, as the server or the network said.")
    latency_ms: int


class Recipients(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: str | None = Field(None, pattern=ID, description="One contact.")
    lead_id: str | None = Field(None, pattern=ID, description="One lead (written to at its contact's address).")
    list_id: str | None = Field(None, pattern=ID, description="Every member of a list (lists_members).")

    @model_validator(mode="after")
    def _exactly_one(self) -> Recipients:
        given = [name for name in ("contact_id", "lead_id", "list_id") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of contact_id, lead_id or list_id")
        return self


class EmailSendInput(ToolInput):
    connection_id: str | None = Field(
        None, pattern=ID, description="The email connection to send through; may be left out when there is one."
    )
    to: Recipients = Field(description="Whom to write to: {contact_id}, {lead_id} or {list_id}.")
    subject: str = Field(min_length=1, max_length=200, description="The subject; merge fields work here too.")
    body: str = Field(min_length=1, max_length=50_000, description="The message, in body_format.")
    body_format: Literal["markdown", "html"] = Field(
        "markdown", description="markdown (sent as HTML with a plain-text copy) or html."
    )
    dry_run: bool = Field(False, description="true: render each message and say who would be skipped; send nothing.")
    confirm: str | None = Field(
        None,
        max_length=100,
        description=f"Needed for a list of more than {CONFIRM_ABOVE} people: the confirm token of this call's dry "
        "run (valid 10 minutes).",
    )
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Unique text per send: a retry (say after a timeout) with the same key returns that send's "
        "report and sends nothing again; the same key with other recipients, subject or body is refused.",
    )


class Person(BaseModel):
    contact_id: str | None
    lead_id: str | None
    name: str | None
    email: str | None


class Skipped(Person):
    reason: str


class EmailMessage(Person):
    subject: str | None = Field(None, description="Dry runs: the rendered subject.")
    text: str | None = Field(None, description="Dry runs: the rendered message (the plain-text part).")
    status: Literal["sent", "failed", "unknown", "held", "pending", "sending"] | None = Field(
        None,
        description="sent; failed (see error); unknown (the connection broke while sending: it may have arrived "
        "and is not sent again); held (not tried: the daily limit or a failed connection); pending or sending (the "
        "send stopped partway: the worker carries on with it).",
    )
    message_id: str | None = None
    error: str | None = None
    activity_id: str | None = Field(None, description="The email activity recorded on the person's timeline.")


class EmailSendResult(BaseModel):
    dry_run: bool
    send_id: str | None = Field(description="The send's id (for `mcp-crm email resume --send`); null if none.")
    members: int = Field(description="The people `to` named (a list's members).")
    counts: dict[str, int]
    messages: list[EmailMessage]
    more_messages: int = Field(description="Messages not shown (failed, unknown and held ones are shown first).")
    skipped: list[Skipped] = Field(description="People not written to, and why (opted out, no email, ...).")
    daily_usage: DailyUsage
    confirm: str | None = Field(description="Dry runs of large list sends: the token the real send needs.")
    summary: str


def _dumped(model: type[BaseModel], value: dict[str, Any]) -> dict[str, Any]:
    return model.model_validate(value).model_dump(mode="json")


def _values(args: BaseModel, names: set[str]) -> dict[str, Any]:
    values = args.model_dump(include=names)
    if "password" in values:
        secret = getattr(args, "password")  # noqa: B009  (the dump masks it)
        values["password"] = secret.get_secret_value() if secret is not None else None
    return values


async def email_connections_create(s: AppState, a: Actor, args: ConnectionCreateInput) -> dict[str, Any]:
    made = await s.crm.email.connections_create(a, _values(args, set(ConnectionCreateInput.model_fields)))
    return _dumped(EmailConnection, made)


async def email_connections_list(s: AppState, a: Actor, args: NoArguments) -> dict[str, Any]:
    return _dumped(EmailConnections, {"items": await s.crm.email.connections_list(a)})


async def email_connections_get(s: AppState, a: Actor, args: ConnectionId) -> dict[str, Any]:
    return _dumped(EmailConnectionDetail, await s.crm.email.connections_get(a, args.connection_id))


async def email_connections_update(s: AppState, a: Actor, args: ConnectionUpdateInput) -> dict[str, Any]:
    changes = _values(args, args.model_fields_set - {"connection_id"})
    for name in ("name", "host", "port", "tls", "from_address", "daily_limit"):
        if name in changes and changes[name] is None:
            changes.pop(name)  # only the login and the sender name can be cleared
    if "username" in changes and changes["username"] is None:
        changes["password"] = None
    return _dumped(EmailConnection, await s.crm.email.connections_update(a, args.connection_id, changes))


async def email_connections_delete(s: AppState, a: Actor, args: ConnectionId) -> dict[str, Any]:
    return _dumped(EmailConnection, await s.crm.email.connections_delete(a, args.connection_id))


async def email_connections_test(s: AppState, a: Actor, args: ConnectionId) -> dict[str, Any]:
    return _dumped(ConnectionTest, await s.crm.email.connections_test(a, args.connection_id))


async def email_send(s: AppState, a: Actor, args: EmailSendInput) -> dict[str, Any]:
    result = await s.crm.email.send(
        a,
        args.connection_id,
        args.to.model_dump(exclude_none=True),
        args.subject,
        args.body,
        args.body_format,
        args.dry_run,
        request_of("email_send", args),
        args.confirm,
        args.idempotency_key,
    )
    return _dumped(EmailSendResult, result)


class _SendTool(CrmTool):
    """email_send does its own dry run (it renders messages, there is no write to rehearse) and asks for its
    own confirm token."""

    async def _guarded(self, state: AppState, actor: Actor, args: Any) -> dict[str, Any]:
        return await self.fn(state, actor, args)


def email_tools() -> list[CrmTool]:
    def tool(name: str, title: str, description: str, handler: Any, arg: Any, out: Any, annotations: Any) -> CrmTool:
        return make_tool(name, title, description, handler, arg, out, annotations, admin=True)

    send = make_tool(
        "email_send",
        "Send an email",
        "Email a contact, a lead (at its contact's address) or every member of a list through an email connection, "
        "and record each message as an activity of type email on the person's timeline (subject, text, "
        f"email_status, email_message_id). {MERGE_HELP} People who opted out or have no email are skipped; the "
        "connection's daily limit holds back the rest; one failed message does not stop the others. Use dry_run: "
        f"true first to read each rendered message; a list of more than {CONFIRM_ABOVE} people needs the dry run's "
        "confirm token. Give an idempotency_key so that a retried call (after a timeout) returns the first send's "
        "report instead of sending again; a send interrupted after it was queued carries on in the worker. The "
        f"report lists at most {SHOWN} messages (more_messages counts the rest). "
        'Example: to {"list_id": "<id>"}, subject "Our webinar, {{first_name|friend}}", body '
        '"Hi {{first_name|there}},\\n\\nJoin us **Thursday**."',
        email_send,
        EmailSendInput,
        EmailSendResult,
        WRITE,
        scope="send",
    )
    return [
        tool(
            "email_connections_create",
            "Add an email connection",
            "Add an SMTP account that email_send sends through: host, port, tls, login, sender and a daily limit. The "
            "password is stored encrypted and never shown again. Then email_connections_test checks the login.",
            email_connections_create,
            ConnectionCreateInput,
            EmailConnection,
            WRITE,
        ),
        tool(
            "email_connections_list",
            "List email connections",
            "The workspace's SMTP connections: server, login name, sender and daily limit (never the password).",
            email_connections_list,
            NoArguments,
            EmailConnections,
            READ,
        ),
        tool(
            "email_connections_get",
            "Get an email connection",
            "One connection, how much of today's limit is used, and its latest sends with messages by status.",
            email_connections_get,
            ConnectionId,
            EmailConnectionDetail,
            READ,
        ),
        tool(
            "email_connections_update",
            "Change an email connection",
            "Change a connection's server, login, password, sender or daily limit; null clears the login, the "
            "password or the sender name. Changing host, port or tls clears the stored password unless a new "
            "password comes in the same call (a new server never gets the old password).",
            email_connections_update,
            ConnectionUpdateInput,
            EmailConnection,
            UPDATE,
        ),
        tool(
            "email_connections_delete",
            "Delete an email connection",
            "Delete a connection and the record of its sends; the email activities stay on the timelines.",
            email_connections_delete,
            ConnectionId,
            EmailConnection,
            DELETE,
        ),
        tool(
            "email_connections_test",
            "Test an email connection",
            "Connect to the SMTP server and log in as a send would, then disconnect: sends nothing. Reports ok, the "
            "error and the latency.",
            email_connections_test,
            ConnectionId,
            ConnectionTest,
            WRITE,  # as webhooks_test: a check that reaches out is not listed among the reads
        ),
        _SendTool.model_construct(**dict(send)),
    ]
