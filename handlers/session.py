"""Who is asking, from the signed session cookie: the one place the web edge decides identity.

The session holds only the staff login id and a fingerprint of the password hash; the account is read
from the help desk database on every request, so a deleted account or a changed password ends the
session at once. Nothing a client sends in a request body ever names the asker.
"""
from __future__ import annotations

from flask import current_app, g, session

from bot import Asker
from bot.accounts import StaffAccount, session_fingerprint

SESSION_KEY = "staff"
FINGERPRINT_KEY = "fp"


def current_account() -> StaffAccount | None:
    """The signed-in staff account of this request, or None (looked up once per request)."""
    if "staff_account" not in g:
        account = None
        login_id = session.get(SESSION_KEY)
        if login_id:
            account = current_app.extensions["helpdesk"].accounts().get(login_id)
            if account is None or session.get(FINGERPRINT_KEY) != session_fingerprint(account):
                session.clear()
                account = None
        g.staff_account = account
    return g.staff_account


def asker_for(account: StaffAccount | None) -> Asker:
    if account is None:
        return Asker()
    return Asker(role="staff", display_name=account.display_name, association_code=account.association_code,
                 association_level=account.level, account=account.login_id)


def current_asker() -> Asker:
    return asker_for(current_account())


def start_session(account: StaffAccount) -> None:
    """Sign in: a fresh session (nothing from before sign-in survives), permanent for
    STAFF_SESSION_HOURS, naming the account and its password fingerprint."""
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = account.login_id
    session[FINGERPRINT_KEY] = session_fingerprint(account)
    g.staff_account = account


def end_session() -> None:
    session.clear()
    g.staff_account = None
