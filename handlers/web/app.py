"""The Flask app factory: settings, per-app services, blueprints, and the error edge.

Nothing is built at import time. `create_app(config)` reads the declared settings (helpdesk.settings:
defaults, the instance's config files, the environment, then `config`, which wins) and builds the
services with helpdesk.services, so two apps in one process (two tests) never share a database, a
limiter or a clock. Errors are worded by helpdesk.errors; this module only chooses JSON or a page.
"""
from __future__ import annotations

import os
import secrets
import threading
from datetime import timedelta

from flask import Flask, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from bot import HelpdeskError
from bot.desk.hours import BusinessHours
from handlers.web import api
from handlers.web import auth
from handlers.desk import console as desk
from handlers.web import embed
from handlers.web import headers
from handlers.web import health
from handlers.web import logs
from handlers.web import metrics
from handlers.web import pages
from handlers.web import qr
from handlers.web import ratelimit  # also registers the helpdesk-memory:// and helpdesk-sqlite:// storages
from handlers.web.api import ApiError, api_error_response, error_for_exception
from handlers.web.pages import page_response
from helpdesk.errors import PAGE_TEXTS, PAGE_TITLES, by_code
from helpdesk.instance import Instance
from helpdesk.services import build_services
from helpdesk.settings import SettingError, load_settings
from records.errors import RecordsError

#: A wrong setting; start-up stops with its one Japanese line.
BadSetting = SettingError


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested too deep for the parser is malformed input like any
    other (ValueError: `get_json` answers 400, `get_json(silent=True)` None), not a RecursionError."""

    ensure_ascii = False
    sort_keys = False

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


class HelpdeskFlask(Flask):
    json_provider_class = JSONProvider


def secret_key(instance: Instance) -> str:
    """Read the instance's secret key, creating it once.

    Written to a temporary file and hard-linked into place, so that workers starting together all end
    up with the same key and none reads a half-written file.
    """
    path = instance.path / "secret_key"
    if not path.exists():
        tmp = path.with_name(f".secret_key.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def session_settings(settings: dict) -> dict:
    """Cookie and CSRF settings for staff sign-in, derived from the declared settings.

    The session cookie is HttpOnly (no script reads it) and SameSite=Lax (not sent with cross-site
    POSTs), and Secure when the help desk is served over HTTPS, which PUBLIC_URL says unless
    SESSION_COOKIE_SECURE is set explicitly. CSRF is checked by handlers.web.auth only where a session
    authenticates the request, and a token lasts as long as the session (the frame may stay open
    for hours).
    """
    secure = settings["SESSION_COOKIE_SECURE"]
    if secure is None:
        secure = str(settings["PUBLIC_URL"] or "").lower().startswith("https://")
    return {
        "SESSION_COOKIE_NAME": "mamis_helpdesk_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": bool(secure),
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=float(settings["STAFF_SESSION_HOURS"])),
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
    }


def create_app(config=None) -> Flask:
    config = dict(config or {})
    settings = load_settings(config.get("INSTANCE_PATH"), config)
    instance = Instance.at(settings.instance_path)
    values = dict(settings)
    values["SECRET_KEY"] = values["SECRET_KEY"] or secret_key(instance)
    values.update(session_settings(values))

    app = HelpdeskFlask("handlers")  # templates/ and static/ live in handlers/, beside the rooms
    app.config.update(values)
    for note in settings.notes:
        app.logger.warning(note)
    app.extensions["helpdesk"] = build_services(instance.path, app.config, search_timer=metrics.search_timer)
    app.jinja_env.globals["desk_line"] = BusinessHours.from_settings(app.config)  # the pages' footer and hints
    if app.config["TRUSTED_PROXIES"]:
        # Behind nginx every request comes from the proxy: take the client's address (rate limits, logs)
        # and scheme from the headers the configured number of proxies set, and from nobody else.
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    limiter = Limiter(
        key_func=lambda: request.remote_addr or "-",
        app=app,
        storage_uri=ratelimit.storage_uri(app.config["RATELIMIT_STORAGE_URI"], instance.path),
        enabled=bool(app.config["RATELIMIT_ENABLED"]),
        headers_enabled=True,
        default_limits=[],
    )
    # A disabled limiter is not registered on the app; keep it alive for the views it decorates.
    app.extensions["helpdesk_limiter"] = limiter

    csrf = CSRFProtect(app)
    auth.protect_sessions(app, csrf)

    app.register_blueprint(api.create_blueprint(limiter))
    app.register_blueprint(auth.create_blueprint(limiter))
    app.register_blueprint(pages.bp)
    app.register_blueprint(embed.bp)
    app.register_blueprint(qr.bp)  # Telegram deep link and QR code of a link code
    app.register_blueprint(health.create_blueprint())
    desk.register(app, limiter)  # the operations desk: console, insights, handoff API (handlers/desk/console.py)
    logs.init_app(app)
    metrics.init_app(app)
    register_error_handlers(app)
    headers.register(app)  # CSP and cache rules on every HTML page (handlers/web/headers.py)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app


def register_error_handlers(app: Flask) -> None:
    """One place turns every failure into Japanese: JSON of one shape under /api, a page elsewhere.
    The words come from helpdesk.errors; a 405 says which methods the URL takes (Allow)."""

    def wants_json() -> bool:
        return request.path == "/api" or request.path.startswith("/api/")

    def respond(err, allowed=None):
        response = api_error_response(err) if wants_json() else error_page(err.status, err.message)
        if allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if e.code == 413:
            drain_body()
        err = error_for_exception(e)
        if not wants_json():
            err = err._replace(message=None)  # a browser reads the page's own wording for an HTTP status
        return respond(err, getattr(e, "valid_methods", None))

    @app.errorhandler(ApiError)
    @app.errorhandler(HelpdeskError)
    @app.errorhandler(RecordsError)
    def domain_error(e: Exception):
        return respond(error_for_exception(e))

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return respond(error_for_exception(e))


def drain_body(limit: int = 1 << 20) -> None:
    """Read and drop an oversized body (up to `limit` bytes) before answering 413.

    Otherwise the server closes the connection while the client is still sending, and the client sees
    a reset instead of our Japanese error.
    """
    stream = request.environ.get("wsgi.input")
    remaining = min(request.content_length or 0, limit)
    while stream is not None and remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        remaining -= len(chunk)


def error_page(status: int, message: str | None = None):
    title = PAGE_TITLES.get(status) or PAGE_TITLES[500 if status >= 500 else 400]
    text = message or PAGE_TEXTS.get(status) or (by_code("internal_error").message if status >= 500
                                                  else PAGE_TEXTS[400])
    return page_response(render_template("error.html", title=title, text=text, status=status), status)
