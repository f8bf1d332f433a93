"""`mcp-crm install` / `uninstall` edit MCP client config files safely; `mcp-crm doctor` reports what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine
from typer.testing import CliRunner

from mcp_crm import clients
from mcp_crm.cli import app
from mcp_crm.clients import ClientId, Status
from mcp_crm.store.migrate import alembic_config

runner = CliRunner(env={"COLUMNS": "300"})

OTHERS = {
    "globalShortcut": "Ctrl+Space",
    "mcpServers": {"filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/x"]}},
}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every config path and the data folder point into tmp_path, never the real home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("APPDATA", str(home / "AppData" / "Roaming"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    for name in ("MCP_CRM_DATABASE_URL", "MCP_CRM_HOST", "MCP_CRM_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    return home


def invoke(*args: str):
    return runner.invoke(app, list(args))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_install_keeps_other_servers_and_keys_and_backs_up(tmp_path):
    path = tmp_path / "claude_desktop_config.json"
    original = json.dumps(OTHERS, indent=4)
    path.write_text(original, encoding="utf-8")

    done = invoke("install", "claude-desktop", "--config", str(path))

    assert done.exit_code == 0, done.output
    data = load(path)
    assert data["globalShortcut"] == "Ctrl+Space"
    assert data["mcpServers"]["filesystem"] == OTHERS["mcpServers"]["filesystem"]
    entry = data["mcpServers"]["mcp-crm"]
    assert set(entry) == {"command", "args"}
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).is_file()
    assert entry["args"][-1] == "serve" and "--database-url" not in entry["args"]
    assert (tmp_path / "claude_desktop_config.json.bak").read_text(encoding="utf-8") == original
    assert "Restart" in done.output or "start it again" in done.output


def test_install_passes_the_database_url_made_absolute(tmp_path, monkeypatch):
    path = tmp_path / "mcp.json"
    monkeypatch.chdir(tmp_path)

    done = invoke("install", "cursor", "--config", str(path), "--database-url", "sqlite:///rel/crm.db")

    assert done.exit_code == 0, done.output
    args = load(path)["mcpServers"]["mcp-crm"]["args"]
    assert args[-2:] == ["--database-url", f"sqlite:///{tmp_path / 'rel' / 'crm.db'}"]


def test_install_creates_a_missing_file_and_its_folders(tmp_path):
    path = tmp_path / "deep" / "er" / "mcp.json"

    done = invoke("install", "cursor", "--config", str(path), "--name", "crm-work")

    assert done.exit_code == 0, done.output
    data = load(path)
    assert list(data) == ["mcpServers"] and list(data["mcpServers"]) == ["crm-work"]
    assert not list(path.parent.glob("*.bak"))


def test_install_twice_changes_nothing_the_second_time(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(OTHERS), encoding="utf-8")
    assert invoke("install", "cursor", "--config", str(path)).exit_code == 0
    before = path.read_bytes(), path.stat().st_mtime_ns, sorted(tmp_path.iterdir())

    again = invoke("install", "cursor", "--config", str(path))

    assert again.exit_code == 0, again.output
    assert "nothing changed" in again.output
    assert (path.read_bytes(), path.stat().st_mtime_ns, sorted(tmp_path.iterdir())) == before


def test_install_again_with_another_database_updates_and_keeps_the_first_backup(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(OTHERS), encoding="utf-8")
    invoke("install", "cursor", "--config", str(path))
    first_backup = (tmp_path / "mcp.json.bak").read_bytes()

    done = invoke("install", "cursor", "--config", str(path), "--database-url", "sqlite:////srv/crm.db")

    assert done.exit_code == 0 and "Updated" in done.output, done.output
    assert load(path)["mcpServers"]["mcp-crm"]["args"][-1] == "sqlite:////srv/crm.db"
    assert (tmp_path / "mcp.json.bak").read_bytes() == first_backup
    assert len(list(tmp_path.glob("mcp.json.*.bak"))) == 1


@pytest.mark.parametrize(
    ("client", "relative", "key"),
    [
        ("claude-desktop", ".config/Claude/claude_desktop_config.json", "mcpServers"),
        ("cursor", ".cursor/mcp.json", "mcpServers"),
        ("claude-code", ".claude.json", "mcpServers"),
        ("vscode", ".config/Code/User/mcp.json", "servers"),
    ],
)
def test_install_finds_each_client_config_under_home(home, client, relative, key):
    done = invoke("install", client)

    assert done.exit_code == 0, done.output
    assert "mcp-crm" in load(home / relative)[key]


def test_config_paths_per_os():
    home = Path("/home/ada")
    env = {"APPDATA": "/appdata"}
    mac = home / "Library" / "Application Support"
    assert clients.config_path(ClientId.claude_desktop, platform="darwin", env={}, home=home) == (
        mac / "Claude" / "claude_desktop_config.json"
    )
    assert clients.config_path(ClientId.vscode, platform="darwin", env={}, home=home) == mac / "Code/User/mcp.json"
    assert clients.config_path(ClientId.claude_desktop, platform="win32", env=env, home=home) == Path(
        "/appdata/Claude/claude_desktop_config.json"
    )
    assert clients.config_path(ClientId.vscode, platform="win32", env=env, home=home) == Path(
        "/appdata/Code/User/mcp.json"
    )
    linux = clients.config_path(ClientId.vscode, platform="linux", env={}, home=home)
    assert linux == home / ".config/Code/User/mcp.json"
    for platform in ("darwin", "win32", "linux"):
        assert clients.config_path(ClientId.cursor, platform=platform, env=env, home=home) == home / ".cursor/mcp.json"
        assert clients.config_path(ClientId.claude_code, platform=platform, env=env, home=home) == home / ".claude.json"


def test_vscode_uses_servers_and_type_stdio(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"servers": {"memory": {"type": "stdio", "command": "npx"}}, "inputs": []}), "utf-8")

    done = invoke("install", "vscode", "--config", str(path))

    assert done.exit_code == 0, done.output
    data = load(path)
    assert "mcpServers" not in data and data["inputs"] == []
    assert data["servers"]["memory"] == {"type": "stdio", "command": "npx"}
    assert data["servers"]["mcp-crm"]["type"] == "stdio"
    assert data["servers"]["mcp-crm"]["args"][-1] == "serve"


def test_uninstall_removes_only_our_entry(tmp_path):
    path = tmp_path / "claude.json"
    path.write_text(json.dumps({**OTHERS, "projects": {"/p": {"mcpServers": {}}}}), encoding="utf-8")
    invoke("install", "claude-code", "--config", str(path))
    installed = path.read_text(encoding="utf-8")

    done = invoke("uninstall", "claude-code", "--config", str(path))

    assert done.exit_code == 0, done.output
    data = load(path)
    assert data == {**OTHERS, "projects": {"/p": {"mcpServers": {}}}}
    backups = sorted(tmp_path.glob("claude.json*.bak"))
    assert installed in [b.read_text(encoding="utf-8") for b in backups]

    again = invoke("uninstall", "claude-code", "--config", str(path))
    assert again.exit_code == 0 and "nothing to remove" in again.output
    assert load(path) == data and sorted(tmp_path.glob("claude.json*.bak")) == backups


@pytest.mark.parametrize("text", ['{"mcpServers": {"x": {}},}  // comment', "[1, 2]", '{"mcpServers": []}'])
@pytest.mark.parametrize("verb", ["install", "uninstall"])
def test_a_file_that_is_not_a_json_config_is_refused_and_left_alone(tmp_path, text, verb):
    path = tmp_path / "mcp.json"
    path.write_text(text, encoding="utf-8")

    done = invoke(verb, "cursor", "--config", str(path))

    assert done.exit_code == 1
    assert "left unchanged" in done.output and "Traceback" not in done.output
    assert path.read_text(encoding="utf-8") == text
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["mcp.json"]


def test_print_shows_the_snippet_and_path_and_writes_nothing(home):
    done = invoke("install", "claude-desktop", "--print", "--database-url", "sqlite:////data/crm.db")

    assert done.exit_code == 0, done.output
    target = home / ".config" / "Claude" / "claude_desktop_config.json"
    first, snippet = done.output.split("\n", 1)
    assert str(target) in first
    entry = json.loads(snippet)["mcpServers"]["mcp-crm"]
    assert entry["args"][-2:] == ["--database-url", "sqlite:////data/crm.db"]
    assert not target.exists() and not target.parent.exists()


def test_unknown_client_is_a_usage_error():
    done = invoke("install", "notepad")
    assert done.exit_code == 2 and "claude-desktop" in done.output


def migrated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    done = invoke("init", "--database-url", url)
    assert done.exit_code == 0, done.output
    return url


def test_doctor_on_a_fresh_migrated_database_is_ok(tmp_path):
    url = migrated_sqlite(tmp_path)

    done = invoke("doctor", "--database-url", url)

    assert done.exit_code == 0, done.output
    assert "latest migration" in done.output and "problem" not in done.output
    assert clients.check_database(url, "mcp-crm init").status is Status.ok


def test_doctor_on_an_empty_sqlite_file_reports_the_migration_with_its_fix(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    url = f"sqlite:///{path}"

    done = invoke("doctor", "--database-url", url)

    assert done.exit_code == 1, done.output
    assert "not initialised" in done.output
    assert f"database: mcp-crm init --database-url {url}" in done.output
    assert path.stat().st_size == 0  # doctor never migrates


def test_doctor_on_a_database_behind_the_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    engine.dispose()

    check = clients.check_database(url, "mcp-crm init")

    assert check.status is Status.problem
    assert "0001" in check.detail and "behind" in check.detail and check.fix.startswith("mcp-crm init")


def test_doctor_on_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not sqlite at all " * 20, encoding="utf-8")

    check = clients.check_database(f"sqlite:///{path}", "mcp-crm init")

    assert check.status is Status.problem and "not a database" in check.detail and "mcp-crm init" in check.fix


def test_doctor_without_a_database_file_does_not_create_one(tmp_path):
    path = tmp_path / "missing" / "crm.db"

    done = invoke("doctor", "--database-url", f"sqlite:///{path}")

    assert done.exit_code == 1
    assert "no database at" in done.output
    assert not path.parent.exists()


def test_doctor_lists_configured_clients_and_broken_entries(home, tmp_path):
    url = migrated_sqlite(tmp_path)
    assert invoke("install", "claude-code").exit_code == 0
    cursor = home / ".cursor" / "mcp.json"
    cursor.parent.mkdir()
    cursor.write_text(json.dumps({"mcpServers": {"crm": {"command": "/gone/bin/mcp-crm", "args": ["serve"]}}}), "utf-8")

    done = invoke("doctor", "--database-url", url)

    assert clients.check_client(ClientId.claude_code, home / ".claude.json").status is Status.ok
    assert clients.check_client(ClientId.vscode, home / ".config/Code/User/mcp.json").status is Status.info
    assert done.exit_code == 1, done.output
    assert "Cursor: mcp-crm install cursor" in done.output


def test_doctor_warns_about_a_public_host_without_failing(tmp_path, monkeypatch):
    url = migrated_sqlite(tmp_path)
    monkeypatch.setenv("MCP_CRM_HOST", "0.0.0.0")

    done = invoke("doctor", "--database-url", url)

    assert done.exit_code == 0, done.output
    assert "HTTP settings: Set MCP_CRM_PUBLIC_URL=https://" in done.output
    plain = clients.check_http({"MCP_CRM_HOST": "10.0.0.5", "MCP_CRM_PUBLIC_URL": "http://crm.example.com"})
    assert plain.status is Status.warning and "https" in plain.fix
    secure = clients.check_http({"MCP_CRM_HOST": "10.0.0.5", "MCP_CRM_PUBLIC_URL": "https://crm.example.com"})
    assert secure.status is Status.ok
    assert clients.check_http({"MCP_CRM_HOST": "::1"}).status is Status.ok


def test_doctor_checks_the_data_folder_without_creating_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")

    blocked = clients.check_data_dir(blocker / "mcp-crm")
    creatable = clients.check_data_dir(tmp_path / "new" / "mcp-crm")

    assert blocked.status is Status.problem and str(blocker / "mcp-crm") in blocked.fix
    assert creatable.status is Status.ok and not (tmp_path / "new").exists()
    assert clients.check_data_dir(tmp_path).status is Status.ok
