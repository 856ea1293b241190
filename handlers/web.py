"""The Flask app factory: settings, per-app services, blueprints, and the error edge.

Nothing is built at import time. `create_app(config)` reads the declared defaults, then the instance's
config.json, then `config` (which wins), and everything the views need hangs off the app it returns,
so two apps in one process (two tests) never share a database, a limiter or a clock.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import threading
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, render_template, request
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

from bot import JST, Core, HelpdeskError, IndexMissing, Store, system_clock
from bot.accounts import StaffAccounts
from handlers import api, auth, embed, health, logs, metrics, pages
from handlers import ratelimit  # also registers the helpdesk-memory:// and helpdesk-sqlite:// storages
from handlers.api import ApiError, api_error_response, error_for_exception
from handlers.instance import Instance
from handlers.pages import page_response
from handlers.settings import defaults
from records.errors import RecordsError

ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class BadSetting(ValueError):
    pass


class SharedSearcher:
    """One Searcher for all threads of a process, used by one thread at a time.

    A Searcher holds an SQLite connection and a Sudachi tokenizer, neither of which may be used by two
    threads at once (the ~75 MB dictionary behind the tokenizer is shared per process by kb.analysis).
    One per thread would gain nothing: ranking is Python under the GIL, so threads of one process
    cannot search in parallel anyway (processes can: that is what gunicorn's workers are for).
    """

    def __init__(self, path: Path):
        from kb.search import Searcher

        self._searcher = Searcher(path)
        self._lock = threading.Lock()

    def search(self, query: str, k: int = 5):
        with self._lock:
            return self._searcher.search(query, k)

    def suggest(self, text: str, k: int = 3):
        with self._lock:
            return self._searcher.suggest(text, k)

    def article(self, slug: str):
        with self._lock:
            return self._searcher.article(slug)

    def articles(self):
        with self._lock:
            return self._searcher.articles()

    def close(self) -> None:
        with self._lock:
            self._searcher.close()


class Services:
    """What the views use: the Store, the searcher, the member records, staff accounts and the Core.

    The searcher is opened on first use, never in the process that forks the server's workers, since
    an SQLite connection must not cross a fork. The records open their read-only connections lazily
    too; a missing records database is not an error here: lookups answer that the member data has not
    been loaded yet, and start working once `helpdesk demo-data` or `sync-members` has created it.
    """

    def __init__(self, instance: Instance, config):
        from records.lookup import Records

        self.instance = instance
        self.config = config
        self.store = Store(instance.helpdesk_db)
        self.clock = fixed_clock(config["NOW"]) if config.get("NOW") else system_clock
        self.records = Records(instance.records_db, instance.audit_db,
                               today=lambda: self.clock().astimezone(JST).date())
        self._accounts = StaffAccounts(self.store, records_db=instance.records_db)
        self._searcher: SharedSearcher | None = None
        self._core: Core | None = None
        self._lock = threading.Lock()

    def accounts(self) -> StaffAccounts:
        return self._accounts

    def searcher(self) -> SharedSearcher:
        if self._searcher is None:
            with self._lock:
                if self._searcher is None:
                    if not self.instance.kb_index.exists():
                        raise IndexMissing(self.instance.kb_index)
                    self._searcher = SharedSearcher(self.instance.kb_index)
        return self._searcher

    def core(self) -> Core:
        if self._core is None:
            searcher = self.searcher()
            with self._lock:
                if self._core is None:
                    self._core = Core(searcher, self.store, self.clock,
                                      max_chars=int(self.config["MAX_MESSAGE_CHARS"]), records=self.records,
                                      link_code_minutes=int(self.config["LINK_CODE_MINUTES"]))
        return self._core

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
            self._searcher = self._core = None
        self.records.close()
        self.store.close()


def fixed_clock(iso: str):
    now = datetime.fromisoformat(iso)
    if now.tzinfo is None:
        raise BadSetting(f"NOW must include a UTC offset, got {iso!r}")
    return lambda: now


def read_config_file(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise BadSetting(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadSetting(f"{path} must hold a JSON object")
    return data


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


def allowed_origins(value) -> list[str]:
    """Accept a list or a space/comma separated string; refuse anything that is not a bare origin,
    since each one is written into a response header."""
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value or [])
    for origin in items:
        if not isinstance(origin, str) or not ORIGIN.fullmatch(origin):
            raise BadSetting(f"ALLOWED_ORIGINS: {origin!r} is not an origin like https://example.jp")
    return items


def session_settings(settings: dict) -> dict:
    """Cookie and CSRF settings for staff sign-in, derived from the declared settings.

    The session cookie is HttpOnly (no script reads it) and SameSite=Lax (not sent with cross-site
    POSTs), and Secure when the help desk is served over HTTPS, which PUBLIC_URL says unless
    SESSION_COOKIE_SECURE is set explicitly. CSRF is checked by handlers.auth only where a session
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
    settings = defaults()
    instance = Instance.at(config.get("INSTANCE_PATH", settings["INSTANCE_PATH"]))
    settings.update(read_config_file(instance.config_file))
    settings.update(config)
    settings["INSTANCE_PATH"] = str(instance.path)
    settings["SECRET_KEY"] = settings["SECRET_KEY"] or secret_key(instance)
    settings["ALLOWED_ORIGINS"] = allowed_origins(settings["ALLOWED_ORIGINS"])
    settings.update(session_settings(settings))

    app = Flask(__name__)
    app.config.update(settings)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["helpdesk"] = Services(instance, app.config)

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
    app.register_blueprint(health.create_blueprint())
    logs.init_app(app)
    metrics.init_app(app)
    register_error_handlers(app)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app


def register_error_handlers(app: Flask) -> None:
    """One place turns every failure into Japanese: JSON of one shape under /api, a page elsewhere."""

    def wants_json() -> bool:
        return request.path == "/api" or request.path.startswith("/api/")

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if e.code == 413:
            drain_body()
        if wants_json():
            return api_error_response(error_for_exception(e))
        return error_page(e.code or 500)

    @app.errorhandler(ApiError)
    @app.errorhandler(HelpdeskError)
    @app.errorhandler(RecordsError)
    def domain_error(e: Exception):
        err = error_for_exception(e)
        if wants_json():
            return api_error_response(err)
        return error_page(err.status)

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return api_error_response(error_for_exception(e))
        return error_page(500)


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


PAGE_ERRORS = {
    400: ("送信内容を確認できませんでした", "ページを再読み込みしてから、もう一度お試しください。"),
    404: ("ページが見つかりません", "お探しのページは見つかりませんでした。URLをご確認いただくか、記事を検索してください。"),
    405: ("この操作はできません", "このページではその操作を受け付けていません。"),
    429: ("アクセスが集中しています", "短い時間に多くのアクセスがありました。少し時間をおいてから、もう一度お試しください。"),
    503: ("準備中です", "ナレッジベースの準備ができていません。しばらくしてからもう一度お試しください。"),
    500: ("エラーが発生しました", "サーバーでエラーが発生しました。時間をおいてもう一度お試しください。"),
}


def error_page(status: int):
    title, text = PAGE_ERRORS.get(status, PAGE_ERRORS[500 if status >= 500 else 404])
    return page_response(render_template("error.html", title=title, text=text, status=status), status)
