"""Who is asking, from the signed session cookie: the one place the web edge decides identity.

The cookie holds a random session token and a fingerprint of the password hash, nothing else. The
session itself lives in the help desk database (bot/accounts/staff.py, table account_sessions): every request
looks the token up there, so a session ended by signing out, by `helpdesk staff signout|passwd|remove`
or by idleness is ended for every copy of the cookie, and a deleted account or a changed password ends
it at once. Nothing a client sends in a request body ever names the asker.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, session

from bot import Asker
from bot.accounts.staff import Account, session_fingerprint
from handlers.desk.auth import end_agent_session
from helpdesk.services import asker_for

TOKEN_KEY = "sid"
FINGERPRINT_KEY = "fp"
LEGACY_KEY = "staff"  # cookies from before server-side sessions named the account: no longer honoured


def _services():
    return current_app.extensions["helpdesk"]


def _now():
    return _services().clock()


def idle_limit() -> timedelta:
    """A session ends after STAFF_SESSION_HOURS without a request (the cookie's lifetime, too)."""
    return current_app.permanent_session_lifetime


def lifetime() -> timedelta:
    """A session ends STAFF_SESSION_MAX_HOURS after sign-in, however busy."""
    return timedelta(hours=float(current_app.config["STAFF_SESSION_MAX_HOURS"]))


def current_account() -> Account | None:
    """The signed-in staff account of this request, or None (looked up once per request).

    A cookie whose session is over is emptied, so the response tells the browser to forget it
    instead of refreshing it."""
    if "staff_account" not in g:
        account = None
        token = session.get(TOKEN_KEY)
        if token:
            account = _services().accounts().session_account(token, _now(), idle_limit(), lifetime())
            if account is not None and session.get(FINGERPRINT_KEY) != session_fingerprint(account):
                account = None
        if account is None and (token or LEGACY_KEY in session):
            forget()
        g.staff_account = account
    return g.staff_account


def current_asker() -> Asker:
    return asker_for(current_account())


def start_session(account: Account) -> None:
    """Sign in: a fresh session (nothing from before sign-in survives, and a session this browser
    held before is ended on the server), permanent for STAFF_SESSION_HOURS."""
    end_session()
    session.permanent = True
    session[TOKEN_KEY] = _services().accounts().start_session(account, _now(), idle_limit())
    session[FINGERPRINT_KEY] = session_fingerprint(account)
    g.staff_account = account


def end_session() -> None:
    """Sign out: end the session on the server, then forget the cookie."""
    token = session.get(TOKEN_KEY)
    if token:
        _services().accounts().end_session(token, _now())
    forget()
    g.staff_account = None


def forget() -> None:
    """Empty the cookie. A desk agent's session kept in the same cookie (handlers/desk/auth.py) is
    ended on the server first: forgetting it here alone would sign this browser out of the console
    while a copy of the cookie stayed valid for the rest of the shift."""
    end_agent_session()
    session.clear()
