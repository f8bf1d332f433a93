"""One-command client setup: the MCP config files of Claude Desktop, Cursor, Claude Code and VS Code
(`mcp-crm install` / `uninstall`), and the checks of `mcp-crm doctor`."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

DEFAULT_NAME = "mcp-crm"


class ClientId(StrEnum):
    claude_desktop = "claude-desktop"
    cursor = "cursor"
    claude_code = "claude-code"
    vscode = "vscode"


@dataclass(frozen=True)
class ClientSpec:
    label: str
    servers_key: str
    typed: bool  # entries carry "type": "stdio"
    next_step: str


CLIENTS: dict[ClientId, ClientSpec] = {
    ClientId.claude_desktop: ClientSpec(
        "Claude Desktop", "mcpServers", False, "Quit Claude Desktop fully (not only its window) and start it again."
    ),
    ClientId.cursor: ClientSpec(
        "Cursor", "mcpServers", False, "Restart Cursor, then check that the server is on in Cursor's MCP settings."
    ),
    ClientId.claude_code: ClientSpec(
        "Claude Code", "mcpServers", True, "Start a new Claude Code session; /mcp lists the server."
    ),
    ClientId.vscode: ClientSpec(
        "VS Code", "servers", True, "Restart VS Code (or run 'MCP: List Servers' and start the server)."
    ),
}


class ConfigError(Exception):
    """A config file we must not rewrite: not JSON, or not the shape the client expects."""


def config_path(
    client: ClientId, *, platform: str | None = None, env: Mapping[str, str] | None = None, home: Path | None = None
) -> Path:
    """Where the client reads its user-wide MCP servers on this OS."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = home or Path.home()
    if platform == "darwin":
        app_config = home / "Library" / "Application Support"
    elif platform == "win32":
        app_config = Path(env["APPDATA"]) if env.get("APPDATA") else home / "AppData" / "Roaming"
    else:
        app_config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    match client:
        case ClientId.claude_desktop:
            return app_config / "Claude" / "claude_desktop_config.json"
        case ClientId.cursor:
            return home / ".cursor" / "mcp.json"
        case ClientId.claude_code:
            return home / ".claude.json"
        case ClientId.vscode:
            return app_config / "Code" / "User" / "mcp.json"


def server_command() -> tuple[str, list[str]]:
    """The absolute command that starts this installation's server: the `mcp-crm` script beside the running
    interpreter, else the interpreter itself with `-m mcp_crm`. Desktop apps do not see the shell's PATH."""
    python = Path(sys.executable).absolute()  # not resolve(): a venv's python is a symlink to the base one
    script = python.with_name("mcp-crm.exe" if sys.platform == "win32" else "mcp-crm")
    if script.is_file():
        return str(script), ["serve"]
    return str(python), ["-m", "mcp_crm", "serve"]


def absolute_database_url(url: str) -> str:
    """A relative SQLite path would be resolved against whatever folder the client starts the server in."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return url
    path = Path(parsed.database).expanduser()
    if path.is_absolute():
        return url
    return parsed.set(database=str(path.absolute())).render_as_string(hide_password=False)


def server_entry(client: ClientId, database_url: str | None = None) -> dict[str, Any]:
    command, args = server_command()
    if database_url:
        args = [*args, "--database-url", absolute_database_url(database_url)]
    entry: dict[str, Any] = {"type": "stdio"} if CLIENTS[client].typed else {}
    entry |= {"command": command, "args": args}
    return entry


def read_config(path: Path) -> dict[str, Any]:
    """The file's JSON object; {} when it is missing or empty."""
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}); it was left unchanged. "
            "Fix the file (comments and trailing commas are not JSON), or add the entry by hand with --print."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, not an object; it was left unchanged.")
    return data


def _servers(config: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    servers = config.get(key, {})
    if not isinstance(servers, dict):
        raise ConfigError(f'"{key}" in {path} is not a JSON object; it was left unchanged.')
    return servers


def backup(path: Path) -> Path:
    """Copy the file aside before changing it: <file>.bak, or a timestamped name so no backup is overwritten."""
    target = path.with_name(path.name + ".bak")
    if target.exists():
        target = path.with_name(f"{path.name}.{datetime.now():%Y%m%d-%H%M%S-%f}.bak")
    shutil.copy2(path, target)
    return target


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Replace the file in one step, so a crash never leaves a half-written config behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Outcome(StrEnum):
    added = "added"
    replaced = "replaced"
    unchanged = "unchanged"
    removed = "removed"
    absent = "absent"


@dataclass(frozen=True)
class Change:
    outcome: Outcome
    path: Path
    backup: Path | None = None
    others: tuple[str, ...] = ()  # other entries that also launch mcp-crm


def install(client: ClientId, path: Path, name: str, entry: dict[str, Any]) -> Change:
    config = read_config(path)
    key = CLIENTS[client].servers_key
    servers = _servers(config, key, path)
    others = tuple(n for n, e in servers.items() if n != name and launches_mcp_crm(e))
    if servers.get(name) == entry:
        return Change(Outcome.unchanged, path, others=others)
    outcome = Outcome.replaced if name in servers else Outcome.added
    saved = backup(path) if path.exists() else None
    config[key] = {**servers, name: entry}
    write_config(path, config)
    return Change(outcome, path, saved, others)


def uninstall(client: ClientId, path: Path, name: str) -> Change:
    config = read_config(path)
    key = CLIENTS[client].servers_key
    servers = _servers(config, key, path)
    if name not in servers:
        return Change(Outcome.absent, path)
    saved = backup(path)
    config[key] = {n: e for n, e in servers.items() if n != name}
    write_config(path, config)
    return Change(Outcome.removed, path, saved)


def launches_mcp_crm(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    command = Path(str(entry.get("command", ""))).name.lower()
    args = entry.get("args") if isinstance(entry.get("args"), list) else []
    return command in ("mcp-crm", "mcp-crm.exe") or "mcp_crm" in [str(a) for a in args]


def configured_entries(client: ClientId, path: Path) -> dict[str, dict[str, Any]]:
    """The entries in the client's config that launch mcp-crm (whatever they are named)."""
    servers = _servers(read_config(path), CLIENTS[client].servers_key, path)
    return {n: e for n, e in servers.items() if (n == DEFAULT_NAME and isinstance(e, dict)) or launches_mcp_crm(e)}


# doctor


class Status(StrEnum):
    ok = "ok"
    info = "-"
    warning = "warning"
    problem = "problem"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def check_database(database_url: str, init_command: str) -> Check:
    """Opens the database without creating or changing it and compares its Alembic revision with the head."""
    from sqlalchemy.engine import make_url

    name = "database"
    try:
        parsed = make_url(database_url)
    except Exception as exc:
        return Check(name, Status.problem, f"not a database URL: {exc}", "Use sqlite:////abs/path.db or postgresql://…")
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return Check(name, Status.problem, f"{shown} is in memory: it is empty at every start", "Use a file.")
        path = Path(parsed.database).expanduser()
        if not path.is_file():
            return Check(name, Status.problem, f"no database at {path} yet", init_command)
    elif parsed.get_backend_name() != "postgresql":
        fix = "Use sqlite:////absolute/path.db or postgresql://user:password@host:5432/db."
        return Check(name, Status.problem, f"unsupported URL scheme {parsed.drivername!r}", fix)
    try:
        current, heads, known = _revisions(database_url, parsed)
    except Exception as exc:
        cause = exc
        while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]
        reason = getattr(cause, "orig", None) or cause
        if parsed.get_backend_name() == "sqlite":
            fix = f"Point --database-url at an mcp-crm database, or move this file away and run {init_command}"
        else:
            fix = "Check the URL, that the PostgreSQL server is running, and the user and password."
        return Check(name, Status.problem, f"cannot open {shown}: {reason}", fix)
    if set(current) == set(heads):
        return Check(name, Status.ok, f"{shown} at the latest migration ({', '.join(heads)})")
    if not current:
        return Check(name, Status.problem, f"{shown} has no mcp-crm schema (not initialised)", init_command)
    if not set(current) <= known:
        fix = "Upgrade mcp-crm to the version that wrote it (pip install -U mcp-crm)."
        return Check(name, Status.problem, f"{shown} is at {', '.join(current)}, newer than this mcp-crm", fix)
    detail = f"{shown} is at {', '.join(current)}, behind the latest {', '.join(heads)}"
    return Check(name, Status.problem, detail, f"{init_command} (the server also migrates at start)")


def _revisions(database_url: str, parsed: Any) -> tuple[tuple[str, ...], tuple[str, ...], set[str]]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection, create_engine

    from mcp_crm.store.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    heads = tuple(script.get_heads())
    known = {revision.revision for revision in script.walk_revisions()}

    def current(conn: Connection) -> tuple[str, ...]:
        return tuple(MigrationContext.configure(conn).get_current_heads())

    if parsed.get_backend_name() == "sqlite":
        uri = Path(parsed.database).expanduser().absolute().as_uri() + "?mode=ro"
        engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
        try:
            with engine.connect() as conn:
                return current(conn), heads, known
        finally:
            engine.dispose()

    import anyio

    from mcp_crm.store.database import Database

    async def run() -> tuple[str, ...]:
        db = Database(database_url)
        try:
            return await db.read(current)
        finally:
            await db.dispose()

    return anyio.run(run), heads, known


def check_data_dir(folder: Path) -> Check:
    """Writable without creating anything: a probe file in the folder, or write access to the nearest
    existing parent when the folder is not there yet (the server creates it at first start)."""
    name = "data folder"
    if folder.is_dir():
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            fix = f"Give yourself write access to {folder}"
            return Check(name, Status.problem, f"{folder} is not writable: {exc}", fix)
        return Check(name, Status.ok, f"{folder} is writable")
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check(name, Status.ok, f"{folder} does not exist yet and can be created")
    return Check(name, Status.problem, f"{folder} cannot be created: {parent} is not writable", f"mkdir -p {folder}")


def check_version() -> Check:
    from mcp_crm import __version__

    python = ".".join(str(n) for n in sys.version_info[:3])
    return Check("version", Status.ok, f"mcp-crm {__version__}, Python {python} ({sys.executable})")


def check_client(client: ClientId, path: Path) -> Check:
    spec = CLIENTS[client]
    fix = f"mcp-crm install {client}"
    try:
        found = configured_entries(client, path) if path.exists() else {}
    except ConfigError as exc:
        return Check(spec.label, Status.warning, str(exc), "Fix the file, then " + fix)
    if not found:
        return Check(spec.label, Status.info, f"not configured ({path})", fix)
    missing = [n for n, e in found.items() if not _runnable(str(e.get("command", "")))]
    if missing:
        detail = f"{', '.join(missing)} in {path} starts a program that is not there"
        return Check(spec.label, Status.problem, detail, f"{fix} (it rewrites the entry)")
    return Check(spec.label, Status.ok, f"{', '.join(found)} in {path}")


def _runnable(command: str) -> bool:
    if not command:
        return False
    if os.sep in command or (os.altsep and os.altsep in command):
        return Path(command).is_file()
    # a bare name: the client's PATH is unknown (desktop apps see less than a shell), so this is a best guess
    return shutil.which(command) is not None


def check_http(env: Mapping[str, str] | None = None) -> Check:
    from urllib.parse import urlsplit

    from mcp_crm.transports.http import is_loopback

    env = os.environ if env is None else env
    name = "HTTP settings"
    host = env.get("MCP_CRM_HOST") or "127.0.0.1"
    public_url = env.get("MCP_CRM_PUBLIC_URL") or ""
    if is_loopback(host):
        return Check(name, Status.ok, f"MCP_CRM_HOST={host}: loopback only")
    if not public_url:
        detail = f"MCP_CRM_HOST={host} is reachable from other machines but MCP_CRM_PUBLIC_URL is not set"
        fix = "Set MCP_CRM_PUBLIC_URL=https://crm.example.com (the URL clients use)"
        return Check(name, Status.warning, detail, fix)
    if urlsplit(public_url).scheme != "https":
        detail = f"MCP_CRM_PUBLIC_URL={public_url} is not https on a non-loopback host: keys travel unencrypted"
        return Check(name, Status.warning, detail, "Serve behind a TLS proxy and set MCP_CRM_PUBLIC_URL=https://…")
    return Check(name, Status.ok, f"MCP_CRM_HOST={host}, public URL {public_url}")
