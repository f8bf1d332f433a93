"""Tables that are not entities: workspaces, the change log every write appends to, the trash, webhook
subscriptions and their delivery outbox, the credentials of hosted mode (API keys, passwords, OAuth clients,
codes and tokens), and email connections with the outbox of their sends."""

from datetime import datetime
from secrets import token_hex
from typing import Any, Literal

from sqlalchemy import JSON, BigInteger, Index, String, Text, text
from sqlmodel import Field, SQLModel

from mcp_crm.ids import new_id
from mcp_crm.store.types import UTCDateTime

OBJECT = {"kind": "object"}  # a structured value: shown, not filtered on


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    trash_retention_days: int = Field(30, sa_column_kwargs={"server_default": "30"})
    # signs confirm tokens; made with the workspace (a Python-side default, so Core inserts get one too)
    secret: str | None = Field(default=None, max_length=64, sa_column_kwargs={"default": lambda: token_hex(32)})


class ChangeEvent(SQLModel, table=True):
    """One committed change to one record, written in the same transaction as the change.
    Audit, timeline and webhooks read from here."""

    __tablename__ = "change_events"
    __table_args__ = (
        Index("ix_change_events_record", "workspace_id", "entity", "record_id", "id"),
        Index("ix_change_events_workspace", "workspace_id", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    entity: str = Field(max_length=40)
    record_id: str = Field(max_length=36)
    action: Literal["created", "updated", "deleted", "restored", "purged"] = Field(sa_type=String(20))
    user_id: str | None = Field(default=None, max_length=36)
    via: str = Field(max_length=20)  # stdio | http | cli | worker
    credential_id: str | None = Field(default=None, max_length=36)  # the API key used (its id, never the secret)
    tool: str | None = Field(default=None, max_length=80)
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON, schema_extra={"json_schema_extra": OBJECT})
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON, schema_extra={"json_schema_extra": OBJECT})
    occurred_at: datetime = Field(sa_type=UTCDateTime)


class Webhook(SQLModel, table=True):
    """A webhook subscription: which events of its workspace go to which URL, signed with its secret (kept
    as given, because signing needs it; no tool returns it after creation)."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_workspace", "workspace_id", "active", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    url: str = Field(sa_type=Text)
    events: list[str] = Field(sa_type=JSON)  # event names, "<entity>.*" or "*"
    description: str | None = Field(default=None, max_length=500)
    active: bool = True
    secret: str = Field(max_length=64)
    previous_secret: str | None = Field(default=None, max_length=64)  # still signs until it expires (rotation)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)  # first failure since a success
    disabled_reason: str | None = Field(default=None, sa_type=Text)  # why the dispatcher turned it off
    # the last place taken in its line: a write takes the next one under this row's lock, so the order of a
    # subscription's events is the order their writes committed in
    last_sequence: int = Field(0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})


class WebhookOutboxEntry(SQLModel, table=True):
    """What one write queued for one subscription: its events, in order, until a dispatcher turns them into
    deliveries. One row per write and subscription, so a bulk write of 500 records adds one row, not 500."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_line", "webhook_id", "sequence"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    webhook_id: str = Field(foreign_key="webhooks.id", max_length=36, ondelete="CASCADE")
    sequence: int = Field(sa_type=BigInteger)  # the write's place in the subscription's line
    events: list[list[str]] = Field(sa_type=JSON)  # [change event id, event name], in order
    created_at: datetime = Field(sa_type=UTCDateTime)  # how long the line has waited, when it has no delivery yet


class ImportRun(SQLModel, table=True):
    """One import of a file: how far it got, committed with each batch it writes, so `--resume` carries on
    after the last committed row and never writes a row twice."""

    __tablename__ = "imports"
    __table_args__ = (Index("ix_imports_source", "workspace_id", "fingerprint", "status"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    entity: str = Field(max_length=40)
    source: str = Field(sa_type=Text)  # the file's name as given
    fingerprint: str = Field(max_length=64)  # sha256 of the file and the import's settings
    options: dict[str, Any] = Field(sa_type=JSON)
    rows_done: int = 0  # rows read and settled (written, or set aside as bad) in committed batches
    status: str = Field(max_length=10)  # running | done
    report: dict[str, Any] = Field(sa_type=JSON)  # the counts so far
    user_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


OPEN_DELIVERY = text("status IN ('pending', 'sending')")


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription: the outbox row a write adds in its own transaction, then the state of
    its delivery. Its id is the message id receivers see (Webhook-Id), the same on every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # the undelivered ones, in order, per subscription: what the dispatcher claims
        Index(
            "ix_webhook_deliveries_open",
            "webhook_id",
            "sequence",
            sqlite_where=OPEN_DELIVERY,
            postgresql_where=OPEN_DELIVERY,
        ),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "status", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    webhook_id: str = Field(foreign_key="webhooks.id", max_length=36, ondelete="CASCADE")
    event: str = Field(max_length=60)
    sequence: int = Field(sa_type=BigInteger)  # its place in its subscription's line (outbox.place)
    change_id: str | None = Field(default=None, max_length=36)  # the change event it reports
    payload: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # events that are no change (ping)
    status: Literal["pending", "sending", "succeeded", "failed"] = Field(sa_type=String(12))
    attempts: int = 0
    retry_base: int = 0  # attempts made before it was last resent: a resend gets the whole retry schedule again
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)  # a dispatcher is sending it
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_latency_ms: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    """One POST of a delivery and what came back."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    delivery_id: str = Field(foreign_key="webhook_deliveries.id", max_length=36, ondelete="CASCADE")
    attempt: int
    started_at: datetime = Field(sa_type=UTCDateTime)
    status_code: int | None = None
    latency_ms: int
    error: str | None = Field(default=None, sa_type=Text)
    response: str | None = Field(default=None, sa_type=Text)  # the start of the response body


class IdempotencyKey(SQLModel, table=True):
    """The result of a write sent with an idempotency key, replayed when the same call comes again."""

    __tablename__ = "idempotency_keys"

    workspace_id: str = Field(foreign_key="workspaces.id", primary_key=True, max_length=36, ondelete="CASCADE")
    actor: str = Field(primary_key=True, max_length=36)  # the user id, or "-" when none acts
    key: str = Field(primary_key=True, max_length=200)
    request: str = Field(max_length=64)  # sha256 of the tool and its arguments
    result: Any = Field(sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)


class TrashEntry(SQLModel, table=True):
    """A deleted record, kept until purged so it can be restored: its row, every link row that named it
    and the records whose reference to it were cleared when it was deleted."""

    __tablename__ = "trash"
    __table_args__ = (
        Index("ix_trash_record", "workspace_id", "entity", "record_id", unique=True),
        Index("ix_trash_deleted_at", "workspace_id", "deleted_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    entity: str = Field(max_length=40)
    record_id: str = Field(max_length=36)
    name: str = Field(max_length=500)
    deleted_at: datetime = Field(sa_type=UTCDateTime)
    deleted_by: str | None = Field(default=None, max_length=36)
    row: dict[str, Any] = Field(sa_type=JSON)
    links: dict[str, list[dict[str, Any]]] = Field(sa_type=JSON)  # link table -> rows
    referenced_by: list[list[str]] = Field(sa_type=JSON)  # [entity, field, record id] cleared on delete


class ApiKey(SQLModel, table=True):
    """A credential for HTTP: `ak_` plus 43 random characters, stored only as its SHA-256 (the secret has 256
    bits of entropy, so a fast hash is the right one; passwords get scrypt)."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_workspace", "workspace_id", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    user_id: str = Field(foreign_key="users.id", max_length=36, ondelete="CASCADE")
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=16)  # the first characters, shown by `keys list` to tell keys apart
    secret_hash: str = Field(max_length=64, unique=True)
    scopes: list[str] = Field(sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Password(SQLModel, table=True):
    """A user's sign-in password for the OAuth consent page (scrypt), apart from the users table so no tool
    can ever read it."""

    __tablename__ = "passwords"

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=36, ondelete="CASCADE")
    hash: str = Field(max_length=200)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class OAuthClient(SQLModel, table=True):
    """An OAuth client registered through dynamic client registration (RFC 7591): the SDK's client record
    as JSON. Its client_secret is kept as given, because the SDK's client authentication compares it."""

    __tablename__ = "oauth_clients"

    client_id: str = Field(primary_key=True, max_length=64)
    info: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)
    authorized_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # its first token; None: never


class OAuthRequest(SQLModel, table=True):
    """An authorization request between /authorize and the consent page's answer. The consent page's link
    carries a random secret (only its hash is kept); each form it renders carries a fresh nonce (hash kept),
    so a form post is bound to the page the person saw."""

    __tablename__ = "oauth_requests"

    request_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(foreign_key="oauth_clients.client_id", max_length=64, ondelete="CASCADE")
    redirect_uri: str = Field(sa_type=Text)
    redirect_uri_explicit: bool
    state: str | None = Field(default=None, sa_type=Text)
    scopes: list[str] | None = Field(default=None, sa_type=JSON)  # what the client asked for, if it did
    code_challenge: str = Field(max_length=128)
    resource: str | None = Field(default=None, sa_type=Text)
    nonce_hash: str | None = Field(default=None, max_length=64)
    # after sign-in: [{workspace_id, user_id, scopes}], the workspaces where the credentials were valid
    signed_in: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    failed_sign_ins: int = Field(0, sa_column_kwargs={"server_default": "0"})
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class OAuthCode(SQLModel, table=True):
    """An authorization code (RFC 6749 4.1), stored as its SHA-256; single use: `used_at` is set by the
    exchange, and a second exchange revokes the tokens the first one issued (RFC 6749 4.1.2)."""

    __tablename__ = "oauth_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(foreign_key="oauth_clients.client_id", max_length=64, ondelete="CASCADE")
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    user_id: str = Field(foreign_key="users.id", max_length=36, ondelete="CASCADE")
    scopes: list[str] = Field(sa_type=JSON)
    code_challenge: str = Field(max_length=128)
    redirect_uri: str = Field(sa_type=Text)
    redirect_uri_explicit: bool
    resource: str | None = Field(default=None, sa_type=Text)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    token_id: str | None = Field(default=None, max_length=36)  # the grant the exchange created


class OAuthToken(SQLModel, table=True):
    """One OAuth grant: its current access token and refresh token, stored only as SHA-256 hashes. A refresh
    replaces both hashes (the old pair stops working); the id stays, and is the credential id in the audit log."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (Index("ix_oauth_tokens_user", "user_id"), Index("ix_oauth_tokens_client", "client_id"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    client_id: str = Field(foreign_key="oauth_clients.client_id", max_length=64, ondelete="CASCADE")
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    user_id: str = Field(foreign_key="users.id", max_length=36, ondelete="CASCADE")
    scopes: list[str] = Field(sa_type=JSON)
    resource: str | None = Field(default=None, sa_type=Text)
    access_hash: str = Field(max_length=64, unique=True)
    access_expires_at: datetime = Field(sa_type=UTCDateTime)
    refresh_hash: str = Field(max_length=64, unique=True)
    refresh_expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    refreshed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


CHANGE_EVENTS = ChangeEvent.__table__  # type: ignore[attr-defined]
IDEMPOTENCY_KEYS = IdempotencyKey.__table__  # type: ignore[attr-defined]
TRASH = TrashEntry.__table__  # type: ignore[attr-defined]
WEBHOOKS = Webhook.__table__  # type: ignore[attr-defined]
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
OUTBOX = WebhookOutboxEntry.__table__  # type: ignore[attr-defined]
ATTEMPTS = WebhookAttempt.__table__  # type: ignore[attr-defined]
IMPORTS = ImportRun.__table__  # type: ignore[attr-defined]
WORKSPACES = Workspace.__table__  # type: ignore[attr-defined]
API_KEYS = ApiKey.__table__  # type: ignore[attr-defined]
PASSWORDS = Password.__table__  # type: ignore[attr-defined]
OAUTH_CLIENTS = OAuthClient.__table__  # type: ignore[attr-defined]
OAUTH_REQUESTS = OAuthRequest.__table__  # type: ignore[attr-defined]
OAUTH_CODES = OAuthCode.__table__  # type: ignore[attr-defined]
OAUTH_TOKENS = OAuthToken.__table__  # type: ignore[attr-defined]


class EmailConnection(SQLModel, table=True):
    """An SMTP account emails are sent through. The password is stored only encrypted (Fernet, with a key kept
    outside the database: mcp_crm/mail/crypto.py); no tool returns it."""

    __tablename__ = "email_connections"
    __table_args__ = (Index("ix_email_connections_workspace", "workspace_id", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    name: str = Field(max_length=200)
    host: str = Field(max_length=253)
    port: int
    tls: str = Field(max_length=10)  # starttls | ssl | none
    username: str | None = Field(default=None, max_length=320)
    password_encrypted: str | None = Field(default=None, sa_type=Text)  # a Fernet token
    from_address: str = Field(max_length=320)
    from_name: str | None = Field(default=None, max_length=200)
    daily_limit: int
    created_by: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


OPEN_SEND = text("finished_at IS NULL")


class EmailSend(SQLModel, table=True):
    """One email_send call that sends: what was asked, and which process is sending it (it refreshes
    `heartbeat_at` while it runs; a send whose heartbeat stopped is taken over by `mcp-crm email resume` or the
    worker)."""

    __tablename__ = "email_sends"
    __table_args__ = (
        Index("ix_email_sends_workspace", "workspace_id", "id"),
        Index("ix_email_sends_open", "heartbeat_at", sqlite_where=OPEN_SEND, postgresql_where=OPEN_SEND),
        Index("ux_email_sends_idempotency", "workspace_id", "idempotency_key", unique=True),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    connection_id: str = Field(foreign_key="email_connections.id", max_length=36, ondelete="CASCADE")
    recipients: dict[str, Any] = Field(sa_type=JSON)  # the `to` asked for: {contact_id | lead_id | list_id}
    subject: str = Field(sa_type=Text)  # as written, with its merge fields
    body: str = Field(sa_type=Text)
    body_format: str = Field(max_length=10)  # markdown | html
    created_by: str | None = Field(default=None, max_length=36)
    via: str = Field(max_length=20)
    created_at: datetime = Field(sa_type=UTCDateTime)
    owner: str | None = Field(default=None, max_length=300)  # host:pid of the process sending it
    heartbeat_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # no message left to try
    idempotency_key: str | None = Field(default=None, max_length=200)  # a retried email_send returns this send


class EmailOutboxEntry(SQLModel, table=True):
    """One message of a send, rendered, and how far its delivery got: pending -> sending -> sent | failed, or
    unknown (the process stopped while sending it: it may have arrived, so it is never sent again), limited (the
    daily limit stopped the send first) or skipped (opted out or deleted before its turn). Its id makes the
    Message-ID, the same on every attempt."""

    __tablename__ = "email_outbox"
    __table_args__ = (
        Index("ix_email_outbox_send", "send_id", "state", "position"),
        Index("ix_email_outbox_connection_day", "connection_id", "attempted_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    send_id: str = Field(foreign_key="email_sends.id", max_length=36, ondelete="CASCADE")
    connection_id: str = Field(max_length=36)  # the send's, for counting the day's messages
    position: int  # the order messages go in
    contact_id: str | None = Field(default=None, max_length=36)
    lead_id: str | None = Field(default=None, max_length=36)
    to_address: str = Field(max_length=320)
    to_name: str | None = Field(default=None, max_length=300)
    subject: str = Field(sa_type=Text)
    text: str = Field(sa_type=Text)
    html: str = Field(sa_type=Text)
    message_id: str = Field(max_length=400)
    state: str = Field(max_length=10)
    error: str | None = Field(default=None, sa_type=Text)
    attempted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    activity_id: str | None = Field(default=None, max_length=36)  # the email activity on the timeline


EMAIL_CONNECTIONS = EmailConnection.__table__  # type: ignore[attr-defined]
EMAIL_SENDS = EmailSend.__table__  # type: ignore[attr-defined]
EMAIL_OUTBOX = EmailOutboxEntry.__table__  # type: ignore[attr-defined]
