"""The desk console's sign-in: who the agent is, from the signed session cookie.

The cookie holds the agent's login id, a fingerprint of their password hash (a changed password or a
removed agent ends the session at once: the account is read again on every request) and the time of
sign-in. A session ends DESK_SESSION_MINUTES after sign-in (a shift), measured on the real clock, not
the app's NOW setting, so that a fixed demo clock never keeps a session alive. Every form of the
console carries a CSRF token (Flask-WTF), checked for every POST under /desk.
"""
from __future__ import annotations

import functools
import time
from datetime import datetime, timedelta, timezone

from flask import current_app, g, redirect, request, session, url_for

from bot.accounts.staff import SignInFailed, session_fingerprint
from bot.desk.actions import Agent
from helpdesk.services import DeskServices

AGENT_KEY, FINGERPRINT_KEY, SINCE_KEY, TOKEN_KEY = "desk_agent", "desk_fp", "desk_since", "desk_token"
EXPIRED_TEXT = "ログインの有効期限が切れました。もう一度ログインしてください。"


def desk_services() -> DeskServices:
    """The app's operations desk (built with its core by helpdesk/services.py)."""
    return current_app.extensions["helpdesk"].desk()


def session_minutes() -> float:
    return float(current_app.config["DESK_SESSION_MINUTES"])


def current_agent():
    """The signed-in agent account of this request, or None; an expired session is ended here."""
    if "desk_agent" not in g:
        account = None
        login_id = session.get(AGENT_KEY)
        if login_id:
            # The session's row on the server (ended by signing out, `agent passwd|remove`), then the shift.
            account = desk_services().agents.session_account(session.get(TOKEN_KEY), _now(), shift())
            expired = time.time() - float(session.get(SINCE_KEY, 0)) > session_minutes() * 60
            if account is None or expired or session.get(FINGERPRINT_KEY) != session_fingerprint(account):
                g.desk_expired = expired and account is not None
                end_agent_session()
                account = None
        g.desk_agent = account
    return g.desk_agent


def acting_agent() -> Agent:
    account = current_agent()
    return Agent(account.login_id, account.display_name)


def start_agent_session(login_id: str, password: str) -> None:
    """Sign an agent in (raises SignInFailed); the staff part of the cookie is left as it is."""
    if not isinstance(login_id, str) or not isinstance(password, str):
        raise SignInFailed()
    agents = desk_services().agents
    account = agents.authenticate(login_id, password, desk_services().handoff.now())
    end_agent_session()  # a session this browser held before ends on the server
    # A CSRF token issued before sign-in (which a planted form may carry) is not the agent's: a new one
    # is made for the next page, as the staff sign-in does by emptying the cookie.
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    session.pop(field, None)
    g.pop(field, None)
    session.permanent = True
    session[TOKEN_KEY] = agents.start_session(account, _now(), shift())
    session[AGENT_KEY] = account.login_id
    session[FINGERPRINT_KEY] = session_fingerprint(account)
    session[SINCE_KEY] = time.time()
    g.desk_agent = account


def end_agent_session() -> None:
    """Sign out of the console: the session ends on the server, so a copied cookie is worthless."""
    token = session.get(TOKEN_KEY)
    if token:
        desk_services().agents.end_session(token, _now())
    for key in (AGENT_KEY, FINGERPRINT_KEY, SINCE_KEY, TOKEN_KEY):
        session.pop(key, None)
    g.desk_agent = None


def _now() -> datetime:
    return datetime.now(timezone.utc)  # the real clock, like the shift length (see the module doc)


def shift() -> timedelta:
    return timedelta(minutes=session_minutes())


def agent_required(view):
    """Send a signed-out (or expired) browser to the console's sign-in page, then back here."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_agent() is None:
            expired = "1" if g.get("desk_expired") else None
            if request.headers.get("X-Requested-With") == "fetch":
                return {"error": {"code": "sign_in_required", "message": EXPIRED_TEXT}}, 401
            # After signing in, a GET comes back to its page; a refused POST (its form is gone) to the queue.
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("desk.login", next=target, expired=expired), code=303)
        return view(*args, **kwargs)

    return wrapped
