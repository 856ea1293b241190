"""The desk console (/desk): sign-in, the queue, a ticket and what an agent does to it.

Server-rendered Japanese pages; every form carries a CSRF token and every POST is checked. Each action
redirects back to the ticket (post/redirect/get), so a reload never sends a reply twice. The queue and
the tab title update without a reload: desk-queue.js fetches /desk/queue/rows every few seconds and
puts the server-rendered rows in place. Work is done by bot/desk/actions.py; this module only translates.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from bot.accounts.staff import SignInFailed
from bot.channels import CHANNELS, PUBLIC
from bot.desk.actions import ChatDetached, EmptyText, TextTooLong
from bot.numbers import MAX_NUMBER
from bot.desk.queue import AGE_JA, QueueFilter, TicketQueue
from bot.desk.tickets import PRIORITIES, PRIORITY_JA, REASON_JA, STATE_JA, STATES, TicketStateError
from handlers.desk import api as desk_api
from handlers.desk import insights as desk_insights
from handlers.desk import live as desk_live
from handlers.web import ratelimit
from handlers.web.auth import local_path, login_id_of_request
from handlers.desk.auth import (acting_agent, agent_required, current_agent, desk_services, end_agent_session,
                                start_agent_session)
from handlers.desk.view import render, ticket_or_404, timeline
from handlers.web.headers import public_url
from helpdesk.errors import by_code, describe

ROLE_JA = {"staff": "医師会事務局の職員", "member": "会員（医師）", "anonymous": "ログインなし", "desk": "運営事務局"}
EVENT_JA = {"created": "問い合わせを作成", "reply": "返信", "note": "内部メモ", "state": "状態を変更",
            "assign": "担当者を変更", "priority": "優先度を変更", "lookup": "記録を照会（問い合わせ者の権限で）",
            "user_message": "利用者からのメッセージ", "acknowledged": "受付の自動返信",
            "new_question": "利用者が「新しい質問」を開始"}
DONE_JA = {"reply": "返信を送信しました。", "note": "内部メモを保存しました。", "assign": "担当者を変更しました。",
           "priority": "優先度を変更しました。", "resolve": "解決済みにしました。利用者との会話はヘルプデスクに戻りました。",
           "reopen": "対応中に戻しました。", "close": "終了にしました。"}
SIGN_IN_LIMITED = by_code("sign_in_rate_limited").message

def check_csrf():
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        current_app.extensions["csrf"].protect()


def desk_labels():
    return {"STATE_JA": STATE_JA, "PRIORITY_JA": PRIORITY_JA, "CHANNEL_JA": CHANNELS, "PUBLIC_CHANNELS": PUBLIC,
            "ROLE_JA": ROLE_JA}


# -- sign-in ------------------------------------------------------------------------------------------


def safe_next(target: str | None) -> str:
    """A path of the console (read like the staff sign-in's `next`), else the queue."""
    path = local_path(target)
    return path if path and (path == "/desk" or path.startswith(("/desk/", "/desk?"))) else url_for("desk.queue")


def login():
    if request.method == "GET":
        if current_agent() is not None:
            return redirect(safe_next(request.args.get("next")))
        notice = "ログインの有効期限が切れました。もう一度ログインしてください。" if request.args.get("expired") else None
        return render("desk/login.html", next=safe_next(request.args.get("next")), notice=notice)
    login_id = request.form.get("login_id", "")
    try:
        start_agent_session(login_id, request.form.get("password", ""))
    except SignInFailed as e:
        return render("desk/login.html", 401, error=e.message_ja, login_id=login_id,
                      next=safe_next(request.form.get("next")))
    return redirect(safe_next(request.form.get("next")), code=303)


def rate_limited(_e):
    """A sign-in limit was reached: the form says so in place."""
    return render("desk/login.html", 429, error=SIGN_IN_LIMITED, login_id=request.form.get("login_id", ""),
                  next=safe_next(request.form.get("next")))


def logout():
    end_agent_session()
    return redirect(url_for("desk.login", signed_out=1), code=303)


# -- the queue ----------------------------------------------------------------------------------------


def queue_page():
    f = QueueFilter.of(request.args)
    return TicketQueue(desk_services().handoff.store).page(f, desk_services().handoff.clock())


@agent_required
def queue():
    page = queue_page()
    return render("desk/queue.html", page=page, f=page.filter, agents=desk_services().agents.names(),
                  STATES=STATES, AGE_JA=AGE_JA)


@agent_required
def queue_rows():
    """The rows, counts and new-ticket number for the queue's polling script."""
    page = queue_page()
    html = render_template("desk/_rows.html", page=page, f=page.filter, agents=desk_services().agents.names())
    response = jsonify({"rows": html, "counts": page.counts, "new": page.new_total, "total": page.total})
    response.headers["Cache-Control"] = "no-store"
    return response


# -- a ticket -----------------------------------------------------------------------------------------


def kb_links():
    try:
        articles = current_app.extensions["helpdesk"].searcher().articles()
    except Exception:  # no index yet: the console works without links to insert
        return []
    # PUBLIC_URL, or the address the server listens on: never the request's Host (handlers/web/headers.py).
    return [{"title": a.title, "url": public_url("pages.article", slug=a.slug)} for a in articles]


def ticket_view(number: int, *, status: int = 200, error: str | None = None, lookup=None, draft: str = ""):
    ticket = ticket_or_404(number)
    ds = desk_services()
    events = ds.tickets.events(number)
    names = ds.agents.names()
    items = timeline(ticket)
    channel = ds.desk.channel(ticket, acting_agent())
    return render("desk/ticket.html", status, ticket=ticket, items=items, events=events,
                  live=desk_live.page_state(number, items, events), previous=ds.tickets.previous(ticket),
                  names=names, EVENT_JA=EVENT_JA, REASON_JA=REASON_JA, PRIORITIES=PRIORITIES,
                  saved=ds.tickets.saved_replies(), links=kb_links(), error=error, lookup=lookup,
                  draft=draft, done=DONE_JA.get(request.args.get("done", "")), hours=ds.hours,
                  channel=channel, detached=by_code("desk_chat_detached").message if channel.detached else None,
                  undeliverable=any(i["undelivered"] for i in items))


@agent_required
def ticket_page(number: int):
    return ticket_view(number)


def act(number: int, done: str, action):
    """Run an action; on a refusal show the ticket again with the reason (and the draft kept)."""
    ticket_or_404(number)
    try:
        action()
    except (EmptyText, TextTooLong, TicketStateError, ChatDetached) as e:
        found = describe(e)
        return ticket_view(number, status=found.status, error=found.message, draft=request.form.get("text", ""))
    return redirect(url_for("desk.ticket_page", number=number, done=done) + "#done", code=303)


@agent_required
def post_message(number: int):
    desk, agent = desk_services().desk, acting_agent()
    text = request.form.get("text", "")
    if request.form.get("action") == "note":
        return act(number, "note", lambda: desk.note(number, agent, text))
    return act(number, "reply", lambda: desk.reply(number, agent, text))


@agent_required
def post_assign(number: int):
    desk, agent = desk_services().desk, acting_agent()
    assignee = request.form.get("assignee", "")
    assignee = agent.login_id if assignee == "me" else assignee
    if assignee and assignee not in desk_services().agents.names():
        return ticket_view(number, status=422, error=by_code("desk_unknown_assignee").message)
    return act(number, "assign", lambda: desk.assign(number, agent, assignee or None))


@agent_required
def post_priority(number: int):
    desk, agent = desk_services().desk, acting_agent()
    priority = request.form.get("priority", "")
    if priority not in PRIORITIES:
        return ticket_view(number, status=422, error=by_code("desk_priority_required").message)
    return act(number, "priority", lambda: desk.set_priority(number, agent, priority))


@agent_required
def post_state(number: int):
    desk, agent = desk_services().desk, acting_agent()
    actions = {"resolve": desk.resolve, "reopen": desk.reopen, "close": desk.close}
    what = request.form.get("to", "")
    if what not in actions:
        return ticket_view(number, status=422, error=by_code("desk_action_required").message)
    return act(number, what, lambda: actions[what](number, agent))


@agent_required
def post_lookup(number: int):
    ticket = ticket_or_404(number)
    try:
        reply = desk_services().desk.lookup(ticket, acting_agent(), request.form.get("query", ""))
    except (EmptyText, TextTooLong) as e:
        return ticket_view(number, status=422, error=describe(e).message)
    return ticket_view(number, lookup=reply)


#: A ticket's number in a path: at most 18 digits, so that a longer one is a 404 here, not an OverflowError
#: in SQLite (bot/numbers.py).
TICKET = f"/tickets/<int(max={MAX_NUMBER}):number>"


def create_blueprint(limiter) -> Blueprint:
    """Register the views (sign-in rate-limited like the staff sign-in) on a fresh blueprint."""
    fresh = Blueprint("desk", __name__, url_prefix="/desk")
    fresh.before_request(check_csrf)
    fresh.app_context_processor(desk_labels)
    # Per address and per login id, as the staff sign-in (handlers/web/auth.py): guesses at one agent's
    # password from many addresses wait as well.
    by_ip = ratelimit.limited(limiter, "SIGN_IN_RATE_LIMIT", message=SIGN_IN_LIMITED, scope="desk-sign-in")
    by_login_id = ratelimit.limited(limiter, "SIGN_IN_ID_RATE_LIMIT", message=SIGN_IN_LIMITED,
                                    scope="desk-sign-in-id", key_func=login_id_of_request)
    fresh.add_url_rule("/login", view_func=by_ip(by_login_id(login)), methods=["GET", "POST"], endpoint="login")
    fresh.register_error_handler(429, rate_limited)
    fresh.add_url_rule("/logout", view_func=logout, methods=["POST"])
    # "/desk" is served as it is, not redirected to "/desk/": Werkzeug's slash redirect is absolute and
    # names the request's Host, which a client chooses.
    fresh.add_url_rule("/", view_func=queue, endpoint="queue", strict_slashes=False)
    fresh.add_url_rule("/queue/rows", view_func=queue_rows)
    fresh.add_url_rule(TICKET, view_func=ticket_page)
    fresh.add_url_rule(TICKET + "/live", view_func=desk_live.ticket_live)  # held for news (handlers/desk/live.py)
    fresh.add_url_rule(TICKET + "/messages", view_func=post_message, methods=["POST"])
    fresh.add_url_rule(TICKET + "/assign", view_func=post_assign, methods=["POST"])
    fresh.add_url_rule(TICKET + "/priority", view_func=post_priority, methods=["POST"])
    fresh.add_url_rule(TICKET + "/state", view_func=post_state, methods=["POST"])
    fresh.add_url_rule(TICKET + "/lookup", view_func=post_lookup, methods=["POST"])
    return fresh


def register(app, limiter) -> None:
    """Attach the console, its insight pages and the desk's API endpoints to `app` (handlers/web/app.py)."""
    app.register_blueprint(create_blueprint(limiter))
    app.register_blueprint(desk_insights.create_blueprint())
    app.register_blueprint(desk_api.create_blueprint(limiter))
