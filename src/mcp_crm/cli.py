"""The `mcp-crm` command."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

import anyio
import asyncpg
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mcp_crm import __version__
from mcp_crm.settings import default_database_url
from mcp_crm.store import Database
from mcp_crm.store.database import UnsupportedDatabase

app = typer.Typer(
    help="mcp-crm: a CRM that AI assistants operate through MCP tools.",
    no_args_is_help=True,
    add_completion=False,
)
T = TypeVar("T")
err = Console(stderr=True)  # stdout belongs to the protocol in stdio mode
out = Console()

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="MCP_CRM_DATABASE_URL",
        help="sqlite:////absolute/path.db or postgresql://user:password@host:5432/db.",
        default_factory=default_database_url,
        show_default="a crm.db file in your user data folder",
    ),
]


AllowLocalWebhooks = Annotated[
    bool,
    typer.Option(
        "--allow-local-webhooks",
        envvar="MCP_CRM_ALLOW_LOCAL_WEBHOOKS",
        help="Let webhooks go to http and to loopback or private addresses (tests, a local n8n).",
    ),
]


AllowLocalSmtp = Annotated[
    bool,
    typer.Option(
        "--allow-local-smtp",
        envvar="MCP_CRM_ALLOW_LOCAL_SMTP",
        help="Let email connections used over HTTP reach loopback and private addresses (tests, a local relay).",
    ),
]
PublicUrl = Annotated[
    str | None,
    typer.Option(
        envvar="MCP_CRM_PUBLIC_URL",
        help="The server's public URL, as given to serve, e.g. https://crm.example.com; with https, emails carry "
        "one-click unsubscribe links.",
    ),
]


def _warn_local_webhooks(allowed: bool) -> None:
    if allowed:
        err.print(
            "[yellow]--allow-local-webhooks: webhooks may go over plain http and to loopback, private and "
            "link-local addresses. Use it only for tests or a receiver on this machine or network.[/yellow]"
        )


def _warn_local_smtp(allowed: bool) -> None:
    if allowed:
        err.print(
            "[yellow]--allow-local-smtp: email connections used over HTTP may reach loopback and private addresses. "
            "Use it only for tests or a mail relay on this machine or network.[/yellow]"
        )


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


@contextmanager
def _explained_database_errors(database_url: str) -> Iterator[None]:
    """A database that cannot be opened is a one-line message and exit code 1, not a traceback."""
    try:
        yield
    except Exception as exc:
        cause = _leaf(exc)
        if not isinstance(cause, OSError | UnsupportedDatabase | DBAPIError | asyncpg.PostgresError):
            raise
        shown = make_url(database_url).render_as_string(hide_password=True) if "://" in database_url else database_url
        reason = cause.orig if isinstance(cause, DBAPIError) else cause
        err.print(
            f"Cannot open the database {shown}: {reason}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(1) from None


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside task-group wrappers."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for client in ("httpx2", "httpcore2"):  # they log each webhook URL, whose path is often the receiver's secret
        logging.getLogger(client).setLevel(logging.WARNING)


@app.command()
def serve(
    database_url: DatabaseUrl,
    transport: Annotated[Transport, typer.Option(help="stdio for local launchers, http for remote clients.")] = (
        Transport.stdio
    ),
    host: Annotated[str, typer.Option(envvar="MCP_CRM_HOST", help="HTTP bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="MCP_CRM_PORT", help="HTTP port.")] = 8765,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="HTTP without API keys, acting as the local owner (loopback only).")
    ] = False,
    public_url: Annotated[
        str | None,
        typer.Option(envvar="MCP_CRM_PUBLIC_URL", help="The URL clients use, e.g. https://crm.example.com."),
    ] = None,
    allowed_host: Annotated[
        list[str] | None, typer.Option("--allowed-host", help="A Host name clients may use (repeatable).")
    ] = None,
    stateless: Annotated[
        bool, typer.Option("--stateless", help="No server-side sessions: for several replicas behind a balancer.")
    ] = False,
    rate_limit: Annotated[
        int, typer.Option(envvar="MCP_CRM_RATE_LIMIT", help="HTTP requests per minute per key; 0 for none.")
    ] = 600,
    read_only: Annotated[bool, typer.Option("--read-only", help="Serve only the tools that read.")] = False,
    toolsets: Annotated[
        str | None,
        typer.Option(
            envvar="MCP_CRM_TOOLSETS",
            help="Only these toolsets, comma-separated: contacts,deals,... or all. Without it, stdio lists "
            "contacts, organizations, deals, tasks, activities and notes at first and the model lists more with "
            "toolsets_enable; HTTP serves every tool.",
        ),
    ] = None,
    tools: Annotated[str | None, typer.Option(help="Exactly these tools, comma-separated.")] = None,
    no_worker: Annotated[
        bool,
        typer.Option("--no-worker", help="Leave webhook delivery and trash emptying to a separate `mcp-crm worker`."),
    ] = False,
    allow_local_webhooks: AllowLocalWebhooks = False,
    allow_local_smtp: AllowLocalSmtp = False,
    log_level: Annotated[str, typer.Option(envvar="MCP_CRM_LOG_LEVEL")] = "WARNING",
) -> None:
    """Run the MCP server (creates and migrates the database on first start)."""
    gc.disable()  # until settle(): starting makes objects to keep, not garbage (0.35 s of a 2.4 s start)
    from mcp_crm.catalog.workspace_tools import select_tools
    from mcp_crm.errors import CrmError

    _logging(log_level)
    try:
        served = select_tools(read_only, _names(toolsets), _names(tools))
    except CrmError as exc:
        err.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    _warn_local_webhooks(allow_local_webhooks)
    _warn_local_smtp(allow_local_smtp)
    if transport is Transport.stdio:
        from mcp_crm.catalog.server import build_server
        from mcp_crm.runtime import settle

        with _explained_database_errors(database_url):
            server = build_server(
                database_url,
                via="stdio",
                tools=served,
                dynamic=toolsets is None and tools is None,
                worker=not no_worker,
                allow_local_webhooks=allow_local_webhooks,
                allow_local_smtp=allow_local_smtp,
            )
            settle()
            server.run()
        return
    from mcp_crm.transports.http import HttpOptions, serve_http

    options = HttpOptions(
        host=host,
        port=port,
        auth=not no_auth,
        public_url=public_url,
        allowed_hosts=tuple(allowed_host or ()),
        stateless=stateless,
        rate_limit=rate_limit,
        tools=served,
        worker=not no_worker,
        allow_local_webhooks=allow_local_webhooks,
        allow_local_smtp=allow_local_smtp,
    )
    try:
        with _explained_database_errors(database_url):
            serve_http(database_url, options, announce=lambda text: err.print(f"mcp-crm {__version__}: {text}"))
    except ValueError as exc:  # a bind address that needs authentication or allowed hosts
        err.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


@app.command()
def init(database_url: DatabaseUrl) -> None:
    """Create (or upgrade) the database and print how to connect Claude Desktop or Cursor."""
    from mcp_crm.operations.workspace import local_actor
    from mcp_crm.store import Database, migrate

    async def run() -> None:
        db = Database(database_url)
        try:
            await migrate(db)
            await local_actor(db, via="cli")
        finally:
            await db.dispose()

    with _explained_database_errors(database_url):
        anyio.run(run)
    out.print(f"[green]Database ready:[/green] {database_url}")
    config = {"mcpServers": {"crm": {"command": "mcp-crm", "args": ["serve", "--database-url", database_url]}}}
    out.print("Add this to claude_desktop_config.json or .cursor/mcp.json:")
    out.print_json(json.dumps(config))


@app.command()
def demo(
    database_url: DatabaseUrl,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
) -> None:
    """Load a realistic demo data set (a few hundred related records) into the local workspace."""
    from mcp_crm.demo import load_demo
    from mcp_crm.errors import CrmError

    try:
        with _explained_database_errors(database_url):
            counts = anyio.run(load_demo, database_url, seed)
    except CrmError as exc:
        err.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    summary = ", ".join(f"{n} {e}" for e, n in counts.items())
    out.print(f"[green]Demo data loaded:[/green] {summary}", soft_wrap=True)


@app.command()
def catalog(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the committed catalog is stale.")] = False,
    directory: Annotated[Path, typer.Option("--dir", help="Where the catalog lives.")] = Path("tool_catalog"),
    stats: Annotated[bool, typer.Option("--stats", help="Print the size of tools/list a model reads.")] = False,
) -> None:
    """Write tool_catalog/ (tools.json + README.md) from the code, or check it is current."""
    from mcp_crm.catalog.export import stale_files, write
    from mcp_crm.catalog.export import stats as measure

    if stats:
        rows = [[surface, tools, f"{size:,}", f"~{tokens:,}"] for surface, tools, size, tokens in measure()]
        _table("tools/list size", ["served", "tools", "bytes", "tokens"], rows)
        return

    if check:
        stale = stale_files(directory)
        if stale:
            err.print(f"[red]Stale:[/red] {', '.join(stale)} in {directory}; run `mcp-crm catalog` and commit.")
            raise typer.Exit(1)
        out.print(f"{directory} is current.")
        return
    write(directory)
    out.print(f"Wrote {directory}/tools.json and {directory}/README.md")


def _in_database(database_url: str, work: Callable[[Connection], T], write: bool = True) -> T:
    """Runs one unit of work on the (migrated) database; a CrmError is a red line and exit code 1."""
    return _with_database(database_url, lambda db: db.write(work) if write else db.read(work))


def _with_database(database_url: str, use: Callable[[Database], Awaitable[T]]) -> T:
    """Opens and migrates the database and runs `use` on it; a CrmError is a red line and exit code 1."""
    from mcp_crm.errors import CrmError
    from mcp_crm.store import migrate

    async def run() -> T:
        db = Database(database_url)
        try:
            await migrate(db)
            return await use(db)
        finally:
            await db.dispose()

    try:
        with _explained_database_errors(database_url):
            return anyio.run(run)
    except CrmError as exc:
        err.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


Workspace = Annotated[str, typer.Option("--workspace", "-w", help="Workspace slug or id.")]

workspaces = typer.Typer(help="Workspaces: separate CRMs in one database (hosted mode).", no_args_is_help=True)
app.add_typer(workspaces, name="workspaces")


@workspaces.command("create")
def workspaces_create(
    database_url: DatabaseUrl,
    slug: Annotated[str, typer.Argument(help="Short name, e.g. acme-sales.")],
    owner_email: Annotated[str, typer.Option(help="The owner's email (their sign-in).")],
    owner_name: Annotated[str, typer.Option(help="The owner's full name.")],
    name: Annotated[str | None, typer.Option(help="Display name; the slug when left out.")] = None,
) -> None:
    """Create a workspace and its owner."""
    from mcp_crm.operations.access import create_workspace

    made = _in_database(database_url, lambda c: create_workspace(c, slug, name or slug, owner_name, owner_email))
    out.print(f"[green]Workspace {made['slug']}[/green] ({made['id']}), owner {owner_email} ({made['owner']['id']})")
    out.print(
        f"Next: mcp-crm keys create --workspace {slug} --user {owner_email} --scopes read,write,delete,send,admin"
    )


@workspaces.command("list")
def workspaces_list(database_url: DatabaseUrl) -> None:
    """List workspaces."""
    from mcp_crm.operations.access import list_workspaces

    rows = _in_database(database_url, list_workspaces, write=False)
    _table(
        "Workspaces",
        ["slug", "name", "id", "trash kept (days)"],
        [[w["slug"], w["name"], w["id"], w["trash_retention_days"]] for w in rows],
    )


@workspaces.command("set")
def workspaces_set(
    database_url: DatabaseUrl,
    workspace: Annotated[str, typer.Argument(help="Workspace slug or id.")],
    trash_retention_days: Annotated[int, typer.Option(help="Days deleted records stay restorable.")],
) -> None:
    """Change a workspace's settings."""
    from mcp_crm.operations.access import find_workspace, set_trash_retention

    def change(conn: Connection) -> None:
        set_trash_retention(conn, find_workspace(conn, workspace)["id"], trash_retention_days)

    _in_database(database_url, change)
    out.print(f"[green]{workspace}[/green]: deleted records stay in the trash {trash_retention_days} days.")


users = typer.Typer(help="Users of a workspace and their sign-in passwords.", no_args_is_help=True)
app.add_typer(users, name="users")


@users.command("create")
def users_create(
    database_url: DatabaseUrl,
    workspace: Workspace,
    email: Annotated[str, typer.Option(help="Their email (sign-in).")],
    name: Annotated[str, typer.Option(help="Full name.")],
    role: Annotated[str, typer.Option(help="owner, admin, member or read_only.")] = "member",
) -> None:
    """Add a user to a workspace."""
    from mcp_crm.operations.access import create_user, find_workspace

    made = _in_database(database_url, lambda c: create_user(c, find_workspace(c, workspace)["id"], name, email, role))
    out.print(f"[green]User {made['name']}[/green] ({made['id']}), {made['role']}")


@users.command("list")
def users_list(database_url: DatabaseUrl, workspace: Workspace) -> None:
    """List a workspace's users."""
    from mcp_crm.entities import ENTITIES
    from mcp_crm.operations.access import find_workspace
    from mcp_crm.operations.records import table_of

    def listed(conn: Connection) -> list[Any]:
        table = table_of(ENTITIES["users"])
        workspace_id = find_workspace(conn, workspace)["id"]
        return list(conn.execute(select(table).where(table.c.workspace_id == workspace_id).order_by(table.c.email)))

    rows = _in_database(database_url, listed, write=False)
    _table(
        f"Users of {workspace}",
        ["email", "name", "role", "active", "id"],
        [[u.email, u.name, u.role, u.active, u.id] for u in rows],
    )


@users.command("set-password")
def users_set_password(
    database_url: DatabaseUrl,
    workspace: Workspace,
    user: Annotated[str, typer.Option("--user", "-u", help="The user's email or id.")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, envvar="MCP_CRM_PASSWORD")
    ],
) -> None:
    """Set the password a user signs in with on the OAuth consent page (at least 12 characters)."""
    from mcp_crm.operations.access import find_user, find_workspace, set_password

    def change(conn: Connection) -> None:
        set_password(conn, find_user(conn, find_workspace(conn, workspace)["id"], user)["id"], password)

    _in_database(database_url, change)
    out.print(f"[green]Password set[/green] for {user}.")


keys = typer.Typer(help="API keys for HTTP clients (Authorization: Bearer ak_...).", no_args_is_help=True)
app.add_typer(keys, name="keys")


@keys.command("create")
def keys_create(
    database_url: DatabaseUrl,
    workspace: Workspace,
    user: Annotated[str, typer.Option("--user", "-u", help="The user the key acts as: email or id.")],
    scopes: Annotated[
        str,
        typer.Option(
            help="Comma-separated: read, write, delete, send (email_send: email people; write does not include it), "
            "admin."
        ),
    ] = "read,write",
    expires: Annotated[str | None, typer.Option(help="Lifetime such as 90d or 12h; never when left out.")] = None,
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'Claude connector'.")] = "API key",
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from mcp_crm.operations.access import create_key, find_workspace, parse_scopes

    def make(conn: Connection) -> tuple[dict[str, Any], str]:
        until = datetime.now(UTC) + _duration(expires) if expires else None
        return create_key(conn, find_workspace(conn, workspace)["id"], user, parse_scopes(scopes), name, until)

    row, secret = _in_database(database_url, make)
    err.print(
        f"[green]Key {row['id']}[/green] for {user}: {', '.join(row['scopes'])}"
        + (f", expires {row['expires_at']:%Y-%m-%d %H:%M} UTC" if row["expires_at"] else "")
    )
    err.print("Store it now; it is not shown again:")
    print(secret)  # the only line on stdout, so `KEY=$(mcp-crm keys create ...)` works


def _duration(text: str) -> timedelta:
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        err.print(f"[red]--expires {text!r}: use a number and a unit, e.g. 90d, 12h or 30m.[/red]")
        raise typer.Exit(2)
    return timedelta(**{units[text[-1]]: int(text[:-1])})


@keys.command("list")
def keys_list(
    database_url: DatabaseUrl,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace's keys.")] = None,
) -> None:
    """List keys (never their secrets)."""
    from mcp_crm.operations.access import find_workspace, list_keys

    def listed(conn: Connection) -> list[dict[str, Any]]:
        return list_keys(conn, find_workspace(conn, workspace)["id"] if workspace else None)

    rows = _in_database(database_url, listed, write=False)
    _table(
        "API keys",
        ["id", "prefix", "name", "scopes", "user", "expires", "last used", "revoked"],
        [
            [
                k["id"],
                f"{k['prefix']}...",
                k["name"],
                ",".join(k["scopes"]),
                k["user_id"],
                k["expires_at"],
                k["last_used_at"],
                k["revoked_at"],
            ]
            for k in rows
        ],
    )


@keys.command("revoke")
def keys_revoke(
    database_url: DatabaseUrl,
    key: Annotated[str, typer.Argument(help="The key's id or prefix (from keys list).")],
) -> None:
    """Revoke a key: it stops working at once."""
    from mcp_crm.operations.access import revoke_key

    row = _in_database(database_url, lambda c: revoke_key(c, key))
    out.print(f"[green]Revoked[/green] {row['id']} ({row['name']}).")


oauth = typer.Typer(help="Apps signed in through OAuth (Claude and ChatGPT connectors).", no_args_is_help=True)
app.add_typer(oauth, name="oauth")


@oauth.command("list")
def oauth_list(
    database_url: DatabaseUrl,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace's grants.")] = None,
) -> None:
    """List OAuth grants (never their tokens)."""
    from mcp_crm.operations.access import find_workspace
    from mcp_crm.operations.oauth import list_grants

    def listed(conn: Connection) -> list[dict[str, Any]]:
        return list_grants(conn, find_workspace(conn, workspace)["id"] if workspace else None)

    rows = _in_database(database_url, listed, write=False)
    _table(
        "OAuth grants",
        ["id", "app", "scopes", "user", "signed in", "refresh until", "revoked"],
        [
            [
                g["id"],
                g["client_name"] or g["client_id"],
                ",".join(g["scopes"]),
                g["user_id"],
                g["created_at"],
                g["refresh_expires_at"],
                g["revoked_at"],
            ]
            for g in rows
        ],
    )


@oauth.command("revoke")
def oauth_revoke(
    database_url: DatabaseUrl,
    grant: Annotated[str, typer.Argument(help="The grant's id (from oauth list).")],
) -> None:
    """Sign an app out: its access and refresh tokens stop working at once."""
    from mcp_crm.operations.oauth import revoke_grant

    _in_database(database_url, lambda c: revoke_grant(c, grant))
    out.print(f"[green]Revoked[/green] {grant}.")


audit = typer.Typer(help="The audit log: every committed change.", no_args_is_help=True)
app.add_typer(audit, name="audit")


@audit.command("export")
def audit_export(
    database_url: DatabaseUrl,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL file to write; stdout if left out.")] = (
        None
    ),
) -> None:
    """Write every change of every workspace as JSON lines, oldest first."""
    from rich.progress import Progress

    from mcp_crm.operations.audit import every_change
    from mcp_crm.store import Database, migrate
    from mcp_crm.store.tables import CHANGE_EVENTS
    from mcp_crm.store.types import json_text

    def export(conn: Connection, sink: TextIO, progress: Progress | None) -> int:
        total = conn.execute(select(func.count()).select_from(CHANGE_EVENTS)).scalar_one()
        task = progress.add_task("Exporting changes", total=total) if progress else None
        written = 0
        for change in every_change(conn):
            sink.write(json_text(change) + "\n")
            written += 1
            if progress is not None and task is not None and written % 1000 == 0:
                progress.update(task, completed=written)
        if progress is not None and task is not None:
            progress.update(task, completed=written)
        return written

    async def run() -> int:
        db = Database(database_url)
        try:
            await migrate(db)
            if output is None:
                return await db.read(lambda conn: export(conn, sys.stdout, None))
            with output.open("w", encoding="utf-8") as sink, Progress(console=err, transient=True) as progress:
                return await db.read(lambda conn: export(conn, sink, progress))
        finally:
            await db.dispose()

    with _explained_database_errors(database_url):
        written = anyio.run(run)
    if output is not None:
        err.print(f"[green]Wrote {written} changes to {output}[/green]")


@app.command()
def worker(
    database_url: DatabaseUrl,
    allow_local_webhooks: AllowLocalWebhooks = False,
    allow_local_smtp: AllowLocalSmtp = False,
    public_url: PublicUrl = None,
) -> None:
    """Deliver webhooks and empty the trash, without serving MCP (beside `serve --no-worker`, on any number of
    machines sharing one database). Runs until stopped."""
    from mcp_crm.operations import Crm
    from mcp_crm.store import Database, migrate
    from mcp_crm.worker import run_worker

    _logging("INFO")
    _warn_local_webhooks(allow_local_webhooks)
    _warn_local_smtp(allow_local_smtp)

    async def run() -> None:
        db = Database(database_url)
        try:
            await migrate(db)
            err.print(f"mcp-crm {__version__} worker: delivering webhooks; stop with Ctrl-C.")
            await run_worker(Crm(db, allow_local_webhooks, allow_local_smtp=allow_local_smtp, public_url=public_url))
        finally:
            await db.dispose()

    with _explained_database_errors(database_url), contextlib.suppress(KeyboardInterrupt):
        anyio.run(run)


webhooks = typer.Typer(help="Webhook subscriptions and their deliveries.", no_args_is_help=True)
app.add_typer(webhooks, name="webhooks")


async def _workspace_actor(db: Database, workspace: str) -> Any:
    """The CLI acting as the workspace's owner (the local user in the local workspace, made if missing)."""
    from mcp_crm.operations.access import find_workspace, workspace_owner
    from mcp_crm.operations.actor import Actor
    from mcp_crm.operations.workspace import LOCAL_SLUG, local_actor

    def owner(conn: Connection) -> Actor:
        found = find_workspace(conn, workspace)["id"]
        return Actor(workspace_id=found, user_id=workspace_owner(conn, found), via="cli")

    return await (local_actor(db, via="cli") if workspace == LOCAL_SLUG else db.read(owner))


def _webhook_call(database_url: str, workspace: str, call: Callable[[Any, Any], Any], allow_local: bool = False) -> Any:
    """Runs one Crm webhook call as the workspace's owner, via the CLI."""
    from mcp_crm.operations import Crm

    async def run(db: Database) -> Any:
        return await call(Crm(db, allow_local), await _workspace_actor(db, workspace))

    return _with_database(database_url, run)


WebhookWorkspace = Annotated[
    str, typer.Option("--workspace", "-w", help="Workspace slug or id; the local one by default.")
]


@webhooks.command("create")
def webhooks_create(
    database_url: DatabaseUrl,
    url: Annotated[str, typer.Argument(help="Where to POST events: https://...")],
    events: Annotated[str, typer.Option(help="Comma-separated event names, <entity>.* or *.")] = "*",
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    workspace: WebhookWorkspace = "local",
    allow_local_webhooks: AllowLocalWebhooks = False,
) -> None:
    """Subscribe a URL and print its signing secret once."""
    made = _webhook_call(
        database_url,
        workspace,
        lambda crm, actor: crm.webhooks_create(actor, url, _names(events), description),
        allow_local_webhooks,
    )
    err.print(f"[green]Webhook {made['id']}[/green] -> {made['url']}: {', '.join(made['events'])}")
    err.print("Its signing secret, not shown again:")
    print(made["secret"])


@webhooks.command("list")
def webhooks_list(database_url: DatabaseUrl, workspace: WebhookWorkspace = "local") -> None:
    """List subscriptions (never their secrets)."""
    rows = _webhook_call(database_url, workspace, lambda crm, actor: crm.webhooks_list(actor))
    _table(
        "Webhooks",
        ["id", "url", "events", "active", "failing since", "turned off because"],
        [
            [w["id"], w["url"], ",".join(w["events"]), w["active"], w["failing_since"], w["disabled_reason"]]
            for w in rows
        ],
    )


@webhooks.command("update")
def webhooks_update(
    database_url: DatabaseUrl,
    webhook_id: str,
    url: Annotated[str | None, typer.Option(help="A new https URL.")] = None,
    events: Annotated[str | None, typer.Option(help="Comma-separated event names, <entity>.* or *.")] = None,
    active: Annotated[bool | None, typer.Option("--active/--paused", help="Resume or pause it.")] = None,
    workspace: WebhookWorkspace = "local",
    allow_local_webhooks: AllowLocalWebhooks = False,
) -> None:
    """Change a subscription's URL or events, or pause and resume it."""
    changes = {"url": url, "events": _names(events) if events else None, "active": active}
    changes = {name: value for name, value in changes.items() if value is not None}
    if not changes:
        err.print("[red]Nothing to change: give --url, --events, --active or --paused.[/red]")
        raise typer.Exit(2)
    done = _webhook_call(
        database_url,
        workspace,
        lambda crm, actor: crm.webhooks_update(actor, webhook_id, changes),
        allow_local_webhooks,
    )
    state = "active" if done["active"] else "paused"
    out.print(f"[green]Updated[/green] {done['id']} -> {done['url']}: {', '.join(done['events'])} ({state})")


@webhooks.command("rotate-secret")
def webhooks_rotate_secret(database_url: DatabaseUrl, webhook_id: str, workspace: WebhookWorkspace = "local") -> None:
    """Print a new signing secret once; the old one keeps signing beside it for 24 hours."""
    done = _webhook_call(database_url, workspace, lambda crm, actor: crm.webhooks_rotate_secret(actor, webhook_id))
    until = done["previous_secret_expires_at"]
    err.print(f"New secret for {done['id']}; the old one also signs until {until:%Y-%m-%d %H:%M} UTC:")
    print(done["secret"])


@webhooks.command("delete")
def webhooks_delete(database_url: DatabaseUrl, webhook_id: str, workspace: WebhookWorkspace = "local") -> None:
    """Delete a subscription and its delivery log."""
    gone = _webhook_call(database_url, workspace, lambda crm, actor: crm.webhooks_delete(actor, webhook_id))
    out.print(f"[green]Deleted[/green] {gone['id']} ({gone['url']}).")


@webhooks.command("test")
def webhooks_test(
    database_url: DatabaseUrl,
    webhook_id: str,
    workspace: WebhookWorkspace = "local",
    allow_local_webhooks: AllowLocalWebhooks = False,
) -> None:
    """Send a ping now and show the answer."""
    result = _webhook_call(
        database_url, workspace, lambda crm, actor: crm.webhooks_test(actor, webhook_id), allow_local_webhooks
    )
    style = "green" if result["delivered"] else "red"
    err.print(
        f"[{style}]{result['status_code'] or 'no answer'}[/{style}] in {result['latency_ms']} ms"
        + (f": {result['error']}" if result["error"] else ""),
        markup=True,
        highlight=False,
    )
    if not result["delivered"]:
        raise typer.Exit(1)


@webhooks.command("deliveries")
def webhooks_deliveries(
    database_url: DatabaseUrl,
    webhook_id: str,
    status: Annotated[str | None, typer.Option(help="pending, sending, succeeded or failed.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 25,
    workspace: WebhookWorkspace = "local",
) -> None:
    """A subscription's latest deliveries and their attempts."""
    items, _ = _webhook_call(
        database_url,
        workspace,
        lambda crm, actor: crm.webhook_deliveries(actor, webhook_id, status, limit, None),
    )
    _table(
        "Deliveries",
        ["id", "event", "status", "attempts", "last status", "latency ms", "next attempt", "error"],
        [
            [d[name] for name in ("id", "event", "status", "attempts", "last_status_code", "last_latency_ms")]
            + [d["next_attempt_at"], d["last_error"]]
            for d in items
        ],
    )


@webhooks.command("resend")
def webhooks_resend(
    database_url: DatabaseUrl,
    delivery_ids: Annotated[list[str], typer.Argument(help="Delivery ids (webhooks deliveries).")],
    workspace: WebhookWorkspace = "local",
) -> None:
    """Queue deliveries again."""
    items = _webhook_call(
        database_url, workspace, lambda crm, actor: crm.webhook_deliveries_resend(actor, delivery_ids)
    )
    out.print(f"[green]Queued[/green] {len(items)} deliveries again.")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command("install")
def install_client(
    client: Annotated[str, typer.Argument(help="claude-desktop, cursor, claude-code or vscode.", metavar="CLIENT")],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="MCP_CRM_DATABASE_URL",
            help="The database the client's server opens; crm.db in your user data folder when left out.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="The entry's name in the client's config.")] = "mcp-crm",
    config: Annotated[
        Path | None, typer.Option("--config", help="Change this config file instead of the client's usual one.")
    ] = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="Only show the entry and the file it belongs in; write nothing.")
    ] = False,
) -> None:
    """Add mcp-crm to an MCP client's config (other servers and settings are kept; the old file is backed up)."""
    from rich.json import JSON
    from rich.markup import escape

    from mcp_crm import clients

    which = _client(client)
    spec = clients.CLIENTS[which]
    path = config.expanduser().absolute() if config else clients.config_path(which)
    entry = clients.server_entry(which, database_url)
    if print_only:
        out.print(f"Add this to {escape(str(path))} ({spec.label}):", soft_wrap=True)
        out.print(JSON(json.dumps({spec.servers_key: {name: entry}})), soft_wrap=True)
        return
    try:
        change = clients.install(which, path, name, entry)
    except (clients.ConfigError, OSError) as exc:
        err.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    shown = escape(str(change.path))
    if change.outcome is clients.Outcome.unchanged:
        out.print(f"[green]{escape(name)}[/green] is already in {shown}; nothing changed.", soft_wrap=True)
    else:
        verb = "Added" if change.outcome is clients.Outcome.added else "Updated"
        out.print(f"[green]{verb} {escape(name)}[/green] in {spec.label}'s config {shown}", soft_wrap=True)
        if change.backup:
            out.print(f"Backup of the previous file: {escape(str(change.backup))}", soft_wrap=True)
        out.print(f"It starts: {escape(' '.join([entry['command'], *entry['args']]))}", soft_wrap=True)
    if change.others:
        out.print(
            f"[yellow]Note:[/yellow] {escape(', '.join(change.others))} in the same file also starts mcp-crm; "
            f"remove duplicates with `mcp-crm uninstall {which} --name ...`.",
            soft_wrap=True,
        )
    if change.outcome is not clients.Outcome.unchanged:
        out.print(f"Next: {spec.next_step}", soft_wrap=True)


@app.command("uninstall")
def uninstall_client(
    client: Annotated[str, typer.Argument(help="claude-desktop, cursor, claude-code or vscode.", metavar="CLIENT")],
    name: Annotated[str, typer.Option("--name", help="The entry's name in the client's config.")] = "mcp-crm",
    config: Annotated[
        Path | None, typer.Option("--config", help="Change this config file instead of the client's usual one.")
    ] = None,
) -> None:
    """Remove mcp-crm's entry from an MCP client's config (only that entry; the old file is backed up)."""
    from rich.markup import escape

    from mcp_crm import clients

    which = _client(client)
    spec = clients.CLIENTS[which]
    path = config.expanduser().absolute() if config else clients.config_path(which)
    try:
        change = clients.uninstall(which, path, name)
    except (clients.ConfigError, OSError) as exc:
        err.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if change.outcome is clients.Outcome.absent:
        out.print(f"No {escape(name)} entry in {escape(str(path))}; nothing to remove.", soft_wrap=True)
        return
    out.print(f"[green]Removed {escape(name)}[/green] from {spec.label}'s config {escape(str(path))}", soft_wrap=True)
    if change.backup:
        out.print(f"Backup of the previous file: {escape(str(change.backup))}", soft_wrap=True)
    out.print(f"Next: {spec.next_step}", soft_wrap=True)


def _client(name: str) -> Any:
    from mcp_crm.clients import ClientId

    try:
        return ClientId(name)
    except ValueError:
        known = ", ".join(c.value for c in ClientId)
        raise typer.BadParameter(f"{name!r} is not one of {known}.", param_hint="CLIENT") from None


@app.command()
def doctor(database_url: DatabaseUrl) -> None:
    """Check the database, the data folder, the configured clients and the HTTP settings, and say how to fix
    what is wrong. Changes nothing. Exit code 1 when a check finds a problem."""
    from rich.markup import escape

    from mcp_crm import clients
    from mcp_crm.settings import data_dir

    init_command = "mcp-crm init"
    if database_url != default_database_url():
        init_command += f" --database-url {make_url(database_url).render_as_string(hide_password=True)}"
    client_checks = [clients.check_client(c, clients.config_path(c)) for c in clients.ClientId]
    checks = [
        clients.check_database(database_url, init_command),
        clients.check_data_dir(data_dir()),
        clients.check_version(),
        *client_checks,
        clients.check_http(),
    ]
    styles = {
        clients.Status.ok: "green",
        clients.Status.info: "dim",
        clients.Status.warning: "yellow",
        clients.Status.problem: "red",
    }
    table = Table(title="mcp-crm doctor", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for check in checks:
        status = f"[{styles[check.status]}]{check.status.value}[/{styles[check.status]}]"
        table.add_row(escape(check.name), status, escape(check.detail))
    out.print(table)
    # fixes below the table, unwrapped, so commands can be copied whole
    for check in checks:
        if check.fix and check.status in (clients.Status.warning, clients.Status.problem):
            style = styles[check.status]
            out.print(f"[{style}]{escape(check.name)}[/{style}]: {escape(check.fix)}", soft_wrap=True)
    if not any(c.status is clients.Status.ok for c in client_checks):
        out.print("No client is set up yet: mcp-crm install claude-desktop (or cursor, claude-code, vscode)")
    if any(c.status is clients.Status.problem for c in checks):
        raise typer.Exit(1)


def _register_transfer_commands() -> None:
    """import, export, backup, restore and migrate-store live with their engines in mcp_crm/transfer."""
    from mcp_crm.transfer import backup_cli, export_cli, import_cli

    import_cli.register(app)
    export_cli.register(app)
    backup_cli.register(app)


_register_transfer_commands()


def _register_email_commands() -> None:
    """email connect, list, test and resume live with the mail code in mcp_crm/mail."""
    from mcp_crm.mail import cli as email_cli

    email_cli.register(app)


_register_email_commands()
