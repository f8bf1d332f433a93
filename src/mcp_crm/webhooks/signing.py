"""Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 over `id.timestamp.body`,
keyed with the base64 secret after `whsec_`, sent as `v1,<base64>` in the webhook-signature header."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from secrets import token_bytes

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(token_bytes(24)).decode("ascii")


def _key(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """One signature per secret, so receivers still holding the previous secret keep verifying during rotation."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign a webhook")
    return " ".join(sign(secret, message_id, timestamp, body) for secret in secrets)


def headers(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Webhook-Id": message_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signature_header(secrets, message_id, timestamp, body),
        "Content-Type": "application/json",
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: int, tolerance: int = 300) -> None:
    """Raise ValueError unless `headers` carry a fresh v1 signature of `body` made with `secret`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    found: dict[str, str] = {}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        value = lowered.get(name, "").strip()
        if not value:
            raise ValueError(f"missing {name} header")
        found[name] = value
    stamp = found["webhook-timestamp"]
    if not stamp.isascii() or not stamp.isdigit():
        raise ValueError(f"webhook-timestamp must be whole seconds since 1970, got {stamp[:40]!r}")
    timestamp = int(stamp)
    if timestamp < now - tolerance:
        raise ValueError(f"webhook-timestamp is {now - timestamp}s old, more than the {tolerance}s tolerance")
    if timestamp > now + tolerance:
        raise ValueError(f"webhook-timestamp is {timestamp - now}s in the future, more than the {tolerance}s tolerance")
    expected = sign(secret, found["webhook-id"], timestamp, body).encode("ascii")
    # Check every candidate (no early exit) so timing does not reveal which one matched.
    matched = False
    for candidate in found["webhook-signature"].split():
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    if not matched:
        raise ValueError("no webhook-signature matches this body with this secret")
