"""Staff sign-in: the /login page and /logout for browsers, /api/session for the widget frame.

Both ways share one rate limit per IP address and one per login id (flask-limiter), the same failure
sentence whether or not the login id exists (bot.accounts.staff), and CSRF protection (Flask-WTF): the form
carries the token as a hidden field, the frame sends it as the X-CSRFToken header after fetching it
from GET /api/session. `protect_sessions` extends that to every state-changing /api request made with
a signed-in session, since such a request is authenticated by the cookie alone.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFProtect, generate_csrf

from bot.accounts.staff import SignInFailed, normalize_login_id
from handlers.web import ratelimit
from handlers.web.api import ApiError, ERRORS, api_error_response, core, json_object
from handlers.web.pages import page_response
from handlers.web.session import current_account, current_asker, end_session, start_session

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SIGNED_OUT_TEXT = "ログアウトしました。"


def _services():
    return current_app.extensions["helpdesk"]


def login_id_of_request() -> str:
    """The login id a sign-in attempt names, for the per-id rate limit (form or JSON)."""
    if request.is_json:
        value = (request.get_json(silent=True) or {}).get("login_id")
    else:
        value = request.form.get("login_id")
    return "sign-in-id:" + normalize_login_id(value if isinstance(value, str) else "")


def authenticate(login_id, password):
    """The account for these credentials (its session started), or SignInFailed."""
    if not isinstance(login_id, str) or not isinstance(password, str):
        raise SignInFailed()
    account = _services().accounts().authenticate(login_id, password, core().now())
    start_session(account)
    return account


def session_json(account) -> dict:
    """What the frame needs: signed in or not, as whom, the quick actions, and a CSRF token."""
    staff = None
    if account is not None:
        staff = {"login_id": account.login_id, "display_name": account.display_name,
                 "level": account.level, "association_code": account.association_code,
                 "association_name": account.association_name}
    quick = [{"label": b.label, "payload": b.payload} for b in core().quick_actions(current_asker())]
    return {"signed_in": account is not None, "staff": staff, "quick_actions": quick, "csrf_token": generate_csrf()}


def local_path(target) -> str | None:
    """`target` if it is a plain path on this site, else None: an absolute or scheme-relative URL would
    make a sign-in page an open redirect, and a control character (CR LF) cannot go into a Location
    header at all. The staff and the desk sign-in both read their `next` through it."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def safe_next(target: str | None) -> str:
    """Only a plain path on this site, else the home page."""
    return local_path(target) or url_for("embed.demo")


# -- views --------------------------------------------------------------------------------------------


def login_page(error: str | None = None, status: int = 200, login_id: str = ""):
    html = render_template("login.html", account=current_account(), error=error, login_id=login_id,
                           next=safe_next(request.values.get("next")),
                           signed_out=request.args.get("signed_out") == "1")
    return page_response(html, status)


def login():
    if request.method == "GET":
        return login_page()
    login_id = request.form.get("login_id", "")
    try:
        authenticate(login_id, request.form.get("password", ""))
    except SignInFailed as e:
        return login_page(e.message_ja, 401, login_id)
    return redirect(safe_next(request.form.get("next")), code=303)


def logout():
    if request.method == "GET":
        if current_account() is None:
            return redirect(url_for("auth.login"))
        return login_page()
    end_session()
    return redirect(url_for("auth.login", signed_out="1"), code=303)


def get_session():
    return get_session_for(current_account())


def post_session():
    body = json_object()
    try:
        account = authenticate(body.get("login_id"), body.get("password"))
    except SignInFailed:
        raise ApiError("sign_in_failed") from None
    return get_session_for(account)


def delete_session():
    end_session()
    return get_session_for(None)


def get_session_for(account):
    response = jsonify(session_json(account))
    response.headers["Cache-Control"] = "no-store"
    return response


def rate_limited(e):
    """The sign-in limit was reached: the form says so in place, the API in the one JSON shape."""
    if request.path.startswith("/api/"):
        return api_error_response(ApiError("sign_in_rate_limited"))
    return login_page(ERRORS["sign_in_rate_limited"][1], 429, request.form.get("login_id", ""))


def create_blueprint(limiter) -> Blueprint:
    bp = Blueprint("auth", __name__)
    message = ERRORS["sign_in_rate_limited"][1]

    def by_ip(view):
        return ratelimit.limited(limiter, "SIGN_IN_RATE_LIMIT", message=message, scope="sign-in-ip")(view)

    def by_login_id(view):
        return ratelimit.limited(limiter, "SIGN_IN_ID_RATE_LIMIT", message=message, scope="sign-in-id",
                                 key_func=login_id_of_request)(view)

    bp.add_url_rule("/login", view_func=by_ip(by_login_id(login)), methods=["GET", "POST"])
    bp.add_url_rule("/logout", view_func=logout, methods=["GET", "POST"])
    bp.add_url_rule("/api/session", view_func=get_session, methods=["GET"])
    bp.add_url_rule("/api/session", view_func=by_ip(by_login_id(post_session)), methods=["POST"],
                    endpoint="post_session")
    bp.add_url_rule("/api/session", view_func=delete_session, methods=["DELETE"], endpoint="delete_session")
    bp.register_error_handler(429, rate_limited)
    return bp


def protect_sessions(app, csrf: CSRFProtect) -> None:
    """Require a CSRF token on every state-changing request that the session cookie authenticates:
    the sign-in and sign-out routes themselves, and any /api call while signed in.

    Anonymous API calls carry no ambient authority (a conversation is opened by its bearer token),
    so they stay as they were for API clients without a session.
    """

    @app.before_request
    def check_csrf():
        if request.method in SAFE_METHODS:
            return
        if request.blueprint == "auth" or (request.path.startswith("/api/") and current_account() is not None):
            csrf.protect()
