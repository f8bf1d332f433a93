"""Where the data lives. Flags and MCP_CRM_* environment variables are read by the CLI (Typer)."""

import os
from pathlib import Path

from platformdirs import user_data_dir


def data_dir() -> Path:
    return Path(user_data_dir("mcp-crm", appauthor=False))


def default_database_url() -> str:
    return os.environ.get("MCP_CRM_DATABASE_URL") or f"sqlite:///{data_dir() / 'crm.db'}"
