"""SMTP delivery with the standard library, run on a worker thread by the caller (anyio.to_thread).

A `Mailer` keeps one session for the messages of a send. What a failure means decides what happens to the
message: the server refused it (failed), the connection could not be made or the login was refused (failed, and
the messages after it are held), or the connection broke while the message was being handed over (unknown: it may
have arrived, so it is never sent again).

Settings with `addresses` (a host checked public for a connection used over HTTP) connect to those addresses only,
in turn, while TLS still checks the certificate against the host name: a DNS answer that changes after the check
(DNS rebinding) cannot send the session elsewhere."""

from __future__ import annotations

import base64
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

TLS_MODES = ("starttls", "ssl", "none")
TIMEOUT = 30  # seconds per network operation
Outcome = Literal["sent", "failed", "unknown"]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str
    username: str | None
    password: str | None = field(default=None, repr=False)
    addresses: tuple[str, ...] = ()  # connect to these (checked) addresses of `host` only; () resolves `host`

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    error: str | None = None
    connection_failed: bool = False  # nothing more can go through this session


class ConnectionFailed(Exception):
    """Connecting, TLS or login failed: nothing was sent. The message is meant for people."""


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}".strip()


def open_session(settings: SmtpSettings) -> smtplib.SMTP:
    """A connected session, TLS started and logged in as configured; ConnectionFailed says why not."""
    context = ssl.create_default_context()
    try:
        session = _connected(settings, context)
    except (OSError, smtplib.SMTPException) as exc:
        raise ConnectionFailed(f"cannot connect to {settings.address} ({settings.tls}): {_why(exc)}") from None
    try:
        session.ehlo()
        if settings.tls == "starttls":
            session.starttls(context=context)
            session.ehlo()
        if settings.username:
            _login(session, settings.username, settings.password or "")
    except smtplib.SMTPAuthenticationError as exc:
        _quietly_close(session)
        raise ConnectionFailed(
            f"{settings.address} refused the login of {settings.username}: {_reply(exc)}; check the username and "
            "password (some providers want an app password)."
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        _quietly_close(session)
        raise ConnectionFailed(f"{settings.address} ({settings.tls}): {exc}") from None
    except (OSError, smtplib.SMTPException) as exc:
        _quietly_close(session)
        raise ConnectionFailed(f"{settings.address} ({settings.tls}): {_why(exc)}") from None
    return session


def _connected(settings: SmtpSettings, context: ssl.SSLContext) -> smtplib.SMTP:
    """A session connected to the host, or to the first of its checked `addresses` that answers, with the host
    name kept for TLS (SNI and the certificate check, in SMTP_SSL and in starttls)."""
    if settings.tls == "ssl":
        session: smtplib.SMTP = smtplib.SMTP_SSL(timeout=TIMEOUT, context=context)
    else:
        session = smtplib.SMTP(timeout=TIMEOUT)
    session._host = settings.host  # type: ignore[attr-defined]  # the server_hostname smtplib gives TLS
    failed: BaseException | None = None
    for target in settings.addresses or (settings.host,):
        try:
            session.connect(target, settings.port)
            return session
        except ssl.SSLError:  # the address answered: TLS itself failed, as it would at the next one
            session.close()
            raise
        except (OSError, smtplib.SMTPException) as exc:
            session.close()
            failed = exc
    assert failed is not None
    raise failed


def _login(session: smtplib.SMTP, username: str, password: str) -> None:
    """smtplib's login takes ASCII only; a password with other characters is sent as UTF-8 (RFC 4616, and what
    servers expect in LOGIN) with AUTH PLAIN, or LOGIN where PLAIN is not offered."""
    if username.isascii() and password.isascii():
        session.login(username, password)
        return
    if not session.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("the server offers no login (AUTH); leave the username out")
    offered = session.esmtp_features["auth"].upper().split()

    def encoded(*parts: str) -> str:
        return base64.b64encode("\0".join(parts).encode()).decode("ascii")

    if "PLAIN" in offered:
        code, reply = session.docmd("AUTH", "PLAIN " + encoded("", username, password))
    elif "LOGIN" in offered:
        code, reply = session.docmd("AUTH", "LOGIN " + encoded(username))
        if code == 334:
            code, reply = session.docmd(encoded(password))
    else:
        raise smtplib.SMTPNotSupportedError(
            f"the server offers only {', '.join(offered)} logins, which need an ASCII password here"
        )
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _why(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):  # TLS itself worked: the tls mode and port are right
        return (
            f"the server's certificate was not accepted ({exc.verify_message or exc}); it must be valid for "
            "the host name and signed by an authority this machine trusts (for a private one, point SSL_CERT_FILE "
            "at its certificate)"
        )
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return f"TLS failed ({exc}); check the tls mode and port (starttls: 587, ssl: 465)"
    return str(exc) or exc.__class__.__name__


def _quietly_close(session: smtplib.SMTP) -> None:
    try:
        session.quit()
    except (OSError, smtplib.SMTPException):
        session.close()


def check_login(settings: SmtpSettings) -> dict[str, object]:
    """Connects, starts TLS and logs in as a send would, then quits without sending: {ok, error, latency_ms}."""
    started = time.perf_counter()
    try:
        session = open_session(settings)
    except ConnectionFailed as exc:
        return {"ok": False, "error": str(exc), "latency_ms": _since(started)}
    _quietly_close(session)
    return {"ok": True, "error": None, "latency_ms": _since(started)}


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


class Mailer:
    """One SMTP session for many messages, opened at the first and checked (NOOP) before each next one."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._session: smtplib.SMTP | None = None

    def _ready(self) -> smtplib.SMTP:
        if self._session is not None:
            try:
                if self._session.noop()[0] == 250:
                    return self._session
            except (OSError, smtplib.SMTPException):
                pass
            self.close()
        self._session = open_session(self.settings)
        return self._session

    def deliver(self, message: EmailMessage, sender: str, recipient: str) -> Delivery:
        try:
            session = self._ready()
        except ConnectionFailed as exc:
            return Delivery("failed", str(exc), connection_failed=True)
        try:
            session.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(recipient, (0, b""))
            reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
            return Delivery("failed", f"{self.settings.host} refused {recipient}: {code} {reply}".strip())
        except smtplib.SMTPResponseException as exc:
            return Delivery("failed", f"{self.settings.host} refused the message: {_reply(exc)}")
        except smtplib.SMTPNotSupportedError as exc:  # refused by smtplib before anything went out
            return Delivery("failed", f"{self.settings.address} cannot take this message: {exc}")
        except (OSError, smtplib.SMTPException) as exc:
            # the session broke while the message was being handed over: the server may have taken it
            self.close()
            return Delivery("unknown", f"the connection to {self.settings.address} broke while sending: {_why(exc)}")
        return Delivery("sent")

    def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            _quietly_close(session)
