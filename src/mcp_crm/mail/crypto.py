"""The key that encrypts SMTP passwords at rest, kept outside the database: MCP_CRM_SECRET_KEY, or else the file
secret.key in the data folder, created on first use readable by its owner only. A backup of the database holds the
encrypted passwords, useless without this key; losing the key means entering the passwords again.

A key file that its group or others may read or write is refused, as ssh refuses such a private key. On PostgreSQL,
whose database several hosts and workers share, passwords are saved only with MCP_CRM_SECRET_KEY set: a key file
exists on one host only, and a password saved with it could not be decrypted anywhere else."""

from __future__ import annotations

import os
import stat
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
        return _read_private(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_private(path)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key + b"\n")
    return key


def _read_private(path: Path) -> bytes:
    """The key in `path`, refused (on POSIX systems) when its group or others may read or write the file."""
    with path.open("rb") as stream:
        mode = os.fstat(stream.fileno()).st_mode  # of the file read, not of whatever the path names later
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CrmError(
                f"The key file {path} has mode {stat.S_IMODE(mode):04o}: other users may read or change it, so "
                f"it is not used. Make it readable by its owner only with `chmod 600 {path}` (and, if others may "
                "have read it, make a new key and enter the email passwords again)."
            )
        return stream.read().strip()


def require_shared_key(store: str) -> None:
    """A password may be saved for a database of kind `store` ("postgresql", "sqlite"): on PostgreSQL only with
    the key in MCP_CRM_SECRET_KEY, which every host and worker sharing the database can be given."""
    if store == "postgresql" and not os.environ.get(KEY_VARIABLE, "").strip():
        raise CrmError(
            f"Not saved: on PostgreSQL an email password is saved only with {KEY_VARIABLE} set, in the environment "
            "of every server and worker that uses the database (a key file exists on one host only, and the others "
            f"could not decrypt the password). Make a key with {HOW_TO_MAKE}, set {KEY_VARIABLE} to it everywhere, "
            "and save the password again."
        )


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
