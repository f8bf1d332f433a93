"""The consent page's HTML: server-rendered, no scripts, no external assets, every shown value escaped."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from starlette.responses import HTMLResponse

SCOPE_TEXT = {
    "read": "See contacts, organizations, deals, services, tasks and users",
    "write": "Create, change and restore records",
    "delete": "Move records to the trash",
    "send": "Send email to contacts, leads and lists, and record it on their timelines",
    "admin": "Manage users, empty the trash and read the audit log",
}
TICK_YOURSELF = {"admin", "send"}  # offered unticked unless the app asked for them
HEADERS = {
    "Cache-Control": "no-store",
    # the page's address carries the request's secret: no Referer to other sites ("no-referrer" would also
    # make browsers send `Origin: null` with the page's own forms)
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # no form-action: Chrome applies it to the redirect to the client's callback after the form is sent
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
}
STYLE = """
body{font:16px/1.5 system-ui,sans-serif;background:#f5f5f7;color:#1d1d1f;margin:0}
main{max-width:30rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:12px;box-shadow:0 1px 4px #0002}
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.75rem 0}
input[type=email],input[type=password]{display:block;width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem}
fieldset{border:1px solid #ccc;border-radius:8px;margin:1rem 0;padding:1rem}legend{font-weight:600}
fieldset label{margin:.4rem 0}button{padding:.5rem 1.2rem;border-radius:6px;border:0;background:#0a60d0;color:#fff}
button.secondary{background:#e5e5ea;color:#1d1d1f}.message{background:#fff4e5;padding:.5rem .75rem;border-radius:6px}
.or{text-align:center;color:#666;margin:.25rem 0}small,code{color:#555}
"""


@dataclass(frozen=True)
class Form:
    """What every form on the page carries: the request's secret and the page's current nonce."""

    request: str
    nonce: str

    def hidden(self, action: str) -> str:
        return "".join(
            f'<input type="hidden" name="{name}" value="{escape(value)}">'
            for name, value in (("request", self.request), ("nonce", self.nonce), ("action", action))
        )


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def problem(message: str, status: int = 400) -> HTMLResponse:
    return page("Cannot continue", f"<h1>Cannot continue</h1><p>{escape(message)}</p>", status)


def _message(text: str | None) -> str:
    return f'<p class="message" role="alert">{escape(text)}</p>' if text else ""


def _deny(form: Form) -> str:
    return f'<form method="post" action="consent">{form.hidden("deny")}<button class="secondary">Deny</button></form>'


def sign_in(app: str, destination: str, form: Form, message: str | None = None, email: str = "") -> HTMLResponse:
    body = (
        f"<h1>Sign in to connect {escape(app)}</h1>"
        f"<p><b>{escape(app)}</b> asks to use this CRM as you. If you allow it, you go back to "
        f"<b>{escape(destination)}</b>.</p>{_message(message)}"
        f'<form method="post" action="consent">{form.hidden("sign_in")}'
        f'<label>Email <input name="email" type="email" autocomplete="username" value="{escape(email)}"></label>'
        '<label>Password <input name="password" type="password" autocomplete="current-password"></label>'
        '<p class="or">or</p>'
        '<label>API key <input name="api_key" type="password" autocomplete="off" placeholder="ak_..."></label>'
        '<button type="submit">Sign in</button></form>' + _deny(form)
    )
    return page(f"Connect {app}", body)


def choose(
    app: str, form: Form, choices: list[dict[str, Any]], asked: list[str] | None, message: str | None = None
) -> HTMLResponse:
    """One form per workspace the person may grant, with a checkbox per scope their role allows there."""
    if not choices:
        wanted = ", ".join(asked or [])
        message = message or f"Your account cannot grant what {app} asks for ({wanted}). Deny, or ask an admin."
    sections = []
    for choice in choices:
        boxes = "".join(
            f'<label><input type="checkbox" name="scope" value="{escape(s)}"'
            # without an explicit request, admin and send are offered but left for the person to tick
            f"{' checked' if asked or s not in TICK_YOURSELF else ''}>"
            f" {escape(SCOPE_TEXT[s])} <code>{escape(s)}</code></label>"
            for s in choice["scopes"]
        )
        sections.append(
            f'<form method="post" action="consent">{form.hidden("approve")}'
            f'<input type="hidden" name="workspace" value="{escape(choice["workspace_id"])}">'
            f"<fieldset><legend>{escape(choice['workspace'])} <small>({escape(choice['slug'])})</small></legend>"
            f"<p><small>as {escape(choice['name'])} &lt;{escape(choice['email'])}&gt;, {escape(choice['role'])}"
            f"</small></p>{boxes}<button>Allow access to {escape(choice['workspace'])}</button></fieldset></form>"
        )
    body = (
        f"<h1>Allow {escape(app)} to use this CRM?</h1>"
        f"<p>{escape(app)} will act as you in the workspace you choose, with the permissions you tick.</p>"
        + _message(message)
        + "".join(sections)
        + _deny(form)
    )
    return page(f"Allow {app}", body)
