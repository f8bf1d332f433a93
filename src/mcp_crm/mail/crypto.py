"""The key that encrypts SMTP passwords at rest, kept outside the database: MCP_CRM_SECRET_KEY, or else the file
secret.key in the data folder, created on first use readable by its owner only. A backup of the database holds the
encrypted passwords, useless without this key; losing the key means entering the passwords again."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from mcp_crm.errors import CrmError
from mcp_crm.settings import data_dir

KEY_VARIABLE = "MCP_CRM_SECRET_KEY"
KEY_FILE = "secret.key"
HOW_TO_MAKE = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def key_location() -> str:
    """Where the key comes from, for messages (never the key itself)."""
    return KEY_VARIABLE if os.environ.get(KEY_VARIABLE) else str(data_dir() / KEY_FILE)


def _fernet() -> Fernet:
    configured = os.environ.get(KEY_VARIABLE)
    key = configured.strip().encode() if configured else _key_file(data_dir() / KEY_FILE)
    try:
        return Fernet(key)
    except ValueError:
        where = KEY_VARIABLE if configured else str(data_dir() / KEY_FILE)
        raise CrmError(
            f"{where} does not hold a valid key (32 url-safe base64-encoded bytes). Make one with {HOW_TO_MAKE}; "
            "passwords saved with another key must then be entered again."
        ) from None


def _key_file(path: Path) -> bytes:
    """The key in `path`, made there first (mode 0600, never replacing a file another process made first)."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key + b"\n")
    return key


def encrypt(password: str) -> str:
    return _fernet().encrypt(password.encode()).decode("ascii")


def decrypt(token: str, connection: str) -> str:
    """The password of `connection` (its name, for the message when the key is not the one it was saved with)."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise CrmError(
            f"The password of email connection '{connection}' cannot be decrypted with the key in {key_location()}: "
            "it was saved with another key. Put the original key back, or enter the password again "
            "(email_connections_update, or `mcp-crm email connect --update <id> --new-password`)."
        ) from None
