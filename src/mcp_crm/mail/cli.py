"""`mcp-crm email connect | list | test | resume`: SMTP connections and sends that a crash interrupted.

The password is read from a hidden prompt or, with --password-stdin, from the first line of stdin; it is never an
argument (arguments show in `ps` and in shell history) and never printed."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

# mcp_crm.cli imports this module to register the commands, so its names are read lazily: `mcp_crm.cli.DatabaseUrl`
# below is a string Typer resolves when the app runs, and the functions import what they use.
import mcp_crm

if TYPE_CHECKING:
    import mcp_crm.cli
    from mcp_crm.operations import Actor, Crm


class Tls(StrEnum):
    starttls = "starttls"
    ssl = "ssl"
    none = "none"


email = typer.Typer(help="Outbound email: SMTP connections and interrupted sends.", no_args_is_help=True)
Workspace = Annotated[str, typer.Option("--workspace", "-w", help="Workspace slug or id; the local one by default.")]


def _call(database_url: str, workspace: str | None, work: Any, **crm_options: Any) -> Any:
    """Runs `work(crm, actor)` on the migrated database as the workspace's owner (actor None without workspace);
    `crm_options` are the Crm's (allow_local_smtp, public_url)."""
    from mcp_crm.cli import _with_database, _workspace_actor
    from mcp_crm.operations import Crm
    from mcp_crm.store import Database

    async def run(db: Database) -> Any:
        actor = await _workspace_actor(db, workspace) if workspace is not None else None
        return await work(Crm(db, **crm_options), actor)

    return _with_database(database_url, run)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            _fail("--password-stdin: the first line of stdin is empty; pipe the password in.", 2)
        return line
    return str(typer.prompt("SMTP password", hide_input=True, err=True))


def _fail(text: str, code: int) -> None:
    from mcp_crm.cli import err

    err.print(text, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@email.command("connect")
def connect(
    database_url: mcp_crm.cli.DatabaseUrl,
    host: Annotated[str | None, typer.Option(help="The SMTP server, e.g. smtp.gmail.com.")] = None,
    from_address: Annotated[str | None, typer.Option("--from", help="The sender address, e.g. ada@acme.com.")] = None,
    port: Annotated[int | None, typer.Option(help="587 for starttls, 465 for ssl, 25 for none.")] = None,
    tls: Annotated[Tls | None, typer.Option(help="starttls (the default), ssl or none.")] = None,
    username: Annotated[str | None, typer.Option(help="The login; a password is then asked for.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    new_password: Annotated[
        bool, typer.Option("--new-password", help="With --update: ask for a new password (or use --password-stdin).")
    ] = False,
    from_name: Annotated[str | None, typer.Option(help="The sender name, e.g. 'Ada at Acme'.")] = None,
    name: Annotated[str | None, typer.Option(help="What to call the connection; the from address by default.")] = None,
    daily_limit: Annotated[int | None, typer.Option(help="At most this many messages a day (UTC); 200 by default.")] = (
        None
    ),
    update: Annotated[
        str | None,
        typer.Option(
            "--update",
            help="Change this connection (its id) instead of adding one; changing --host, --port or --tls clears "
            "the stored password unless --new-password gives one.",
        ),
    ] = None,
    skip_test: Annotated[bool, typer.Option("--skip-test", help="Save without checking the login first.")] = False,
    workspace: Workspace = "local",
) -> None:
    """Add an SMTP connection (or change one with --update); the login is checked before it is saved."""
    given = {
        "host": host,
        "from_address": from_address,
        "port": port,
        "tls": tls.value if tls else None,
        "username": username,
        "from_name": from_name,
        "name": name,
        "daily_limit": daily_limit,
    }
    values = {k: v for k, v in given.items() if v is not None}
    if update is None:
        missing = [option for option, key in (("--host", "host"), ("--from", "from_address")) if key not in values]
        if missing:
            _fail(f"{' and '.join(missing)} needed to add a connection (or --update ID to change one).", 2)
    if username is not None or password_stdin or new_password:
        values["password"] = _password(password_stdin)
    done = _call(database_url, workspace, lambda crm, actor: _save(crm, actor, update, values, skip_test))
    _print_saved(done)


async def _save(crm: Crm, actor: Actor, update: str | None, values: dict[str, Any], skip_test: bool) -> Any:
    """(the connection, the login check or None): a new connection is saved only when its login works."""
    import anyio.to_thread

    from mcp_crm.errors import CrmError
    from mcp_crm.mail.smtp import SmtpSettings, check_login
    from mcp_crm.operations.email_connections import DEFAULTS

    if update is not None:
        saved = await crm.email.connections_update(actor, update, values)
        if skip_test:
            return saved, None
        try:
            return saved, await crm.email.connections_test(actor, saved["id"])
        except CrmError as exc:  # a login whose password was cleared by a change of server
            return saved, {"ok": False, "error": str(exc), "latency_ms": 0}
    if skip_test:
        return await crm.email.connections_create(actor, values), None
    port, tls = values.get("port", DEFAULTS["port"]), values.get("tls", DEFAULTS["tls"])
    settings = SmtpSettings(values["host"], port, tls, values.get("username"), values.get("password"))
    checked = await anyio.to_thread.run_sync(check_login, settings)
    if not checked["ok"]:
        raise CrmError(f"Not saved: the login check failed: {checked['error']} (--skip-test saves it anyway).")
    return await crm.email.connections_create(actor, values), checked


def _print_saved(done: tuple[dict[str, Any], dict[str, Any] | None]) -> None:
    from rich.markup import escape

    from mcp_crm.cli import err, out

    saved, checked = done
    login = f" as {saved['username']}" if saved["username"] else " without login"
    out.print(
        f"[green]Email connection {saved['id']}[/green] ({escape(saved['name'])}): {saved['host']}:{saved['port']} "
        f"{saved['tls']}{escape(login)}, from {escape(saved['from_address'])}, {saved['daily_limit']} a day.",
        soft_wrap=True,
    )
    if checked is None:
        return
    if checked["ok"]:
        out.print(f"Login checked: ok ({checked['latency_ms']} ms).")
        return
    err.print(f"Saved, but the login check failed: {checked['error']}", style="red", markup=False, soft_wrap=True)
    raise typer.Exit(1)


@email.command("list")
def list_connections(database_url: mcp_crm.cli.DatabaseUrl, workspace: Workspace = "local") -> None:
    """List the workspace's email connections (never their passwords)."""
    from mcp_crm.cli import _table

    rows = _call(database_url, workspace, lambda crm, actor: crm.email.connections_list(actor))
    _table(
        "Email connections",
        ["id", "name", "server", "tls", "login", "from", "a day"],
        [
            [
                c["id"],
                c["name"],
                f"{c['host']}:{c['port']}",
                c["tls"],
                c["username"],
                c["from_address"],
                c["daily_limit"],
            ]
            for c in rows
        ],
    )


@email.command("test")
def test_connection(
    database_url: mcp_crm.cli.DatabaseUrl,
    connection_id: Annotated[str, typer.Argument(help="The connection's id (email list).")],
    workspace: Workspace = "local",
) -> None:
    """Connect and log in as a send would, and send nothing."""
    from mcp_crm.cli import out

    result = _call(database_url, workspace, lambda crm, actor: crm.email.connections_test(actor, connection_id))
    if not result["ok"]:
        _fail(f"Login check failed after {result['latency_ms']} ms: {result['error']}", 1)
    out.print(f"[green]ok[/green]: connected and logged in ({result['latency_ms']} ms).")


@email.command("resume")
def resume(
    database_url: mcp_crm.cli.DatabaseUrl,
    send: Annotated[
        str | None,
        typer.Option("--send", help="Only this send (its id), its held messages (daily limit, failed connection) too."),
    ] = None,
    allow_local_smtp: mcp_crm.cli.AllowLocalSmtp = False,
    public_url: mcp_crm.cli.PublicUrl = None,
) -> None:
    """Carry on with sends a stopped process left unfinished; `mcp-crm serve` and `mcp-crm worker` do it by
    themselves a minute after the process stopped.

    A message that was being handed to the mail server is not sent again (it may have arrived): it is marked
    unknown and listed."""
    from mcp_crm.cli import out

    reports = _call(
        database_url,
        None,
        lambda crm, _actor: crm.email.resume("cli", send),
        allow_local_smtp=allow_local_smtp,
        public_url=public_url,
    )
    if not reports:
        out.print("No unfinished send to carry on with.")
    for report in reports:
        _print_resumed(report)


def _print_resumed(report: dict[str, Any]) -> None:
    from collections import Counter

    from rich.markup import escape

    from mcp_crm.cli import out

    counts = Counter(m["status"] for m in report["messages"])
    listed = ", ".join(f"{counts[s]} {s}" for s in ("sent", "failed", "unknown", "held", "skipped") if counts[s])
    out.print(f"[green]Send {report['send_id']}[/green]: {listed or 'nothing to send'}.", soft_wrap=True)
    for message in report["messages"]:
        if message["status"] in ("failed", "unknown", "held"):
            out.print(
                f"  {message['status']}: {escape(message['name'] or '')} <{escape(message['email'])}>: "
                f"{escape(message['error'] or '')}",
                soft_wrap=True,
                highlight=False,
            )


def register(app: typer.Typer) -> None:
    import mcp_crm.cli  # noqa: F401  (so `mcp_crm.cli.DatabaseUrl` resolves when Typer reads the signatures)

    app.add_typer(email, name="email")
