"""What the desk console's pages share: the page itself (render) and a ticket's thread (timeline).

The ticket page (handlers/desk/console.py), its live updates (handlers/desk/live.py) and the insight pages
(handlers/desk/insights.py) all draw with these, so they live here, below all three.
"""
from __future__ import annotations

from flask import abort, render_template

from bot.channels import WEB
from bot.desk.tickets import TicketNotFound
from handlers.desk.auth import current_agent, desk_services
from handlers.web.pages import page_response

DELIVERY_JA = {"sent": "送信済み", "queued": "送信待ち", "failed": "送信できませんでした",
               "unreachable": "送信できませんでした（利用者がボットをブロックしています）"}


def render(template: str, status: int = 200, **values):
    html = render_template(template, agent=current_agent(), **values)
    response = page_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def ticket_or_404(number: int):
    try:
        return desk_services().tickets.get(number)
    except TicketNotFound:
        abort(404)


#: Events drawn in the thread beside the messages, with the words shown for the ones the user caused.
THREAD_EVENTS = {"note": None, "new_question": "利用者がチャットで「新しい質問」を始めました（ヘルプデスクとの別の会話）。"
                                               "この問い合わせへの返信は、これまでどおり利用者に届きます。"}


def in_thread(ticket, messages) -> list:
    """The messages of the ticket's own thread: after its confirmation, before the next ticket of the
    conversation, and, once it was resolved, up to the desk's message saying so (the user's later chat
    with the bot is not the ticket's)."""
    start = ticket.start_message_id or 0
    end = desk_services().tickets.next_start(ticket)
    mine = [(m, red) for m, red in messages if m.id > start and (end is None or m.id <= end)]
    if not ticket.active:
        closed = [i for i, (m, _) in enumerate(mine) if m.reply is not None and m.reply.kind == "desk_closed"]
        if closed:
            mine = mine[:closed[-1] + 1]
    return mine


def timeline(ticket):
    """The ticket's thread after it was made: messages (redacted), internal notes and what the user did
    (started a new question), in order."""
    ds = desk_services()
    redact = ds.handoff.redact
    items = [{"kind": "message", "id": m.id, "role": m.role, "at": m.created_at, "author": m.author,
              "text": red if red is not None else redact(m.text)}
             for m, red in in_thread(ticket, ds.handoff.store.redacted_messages(ticket.conversation_id))]
    for e in ds.tickets.events(ticket.number):
        if e.kind in THREAD_EVENTS:
            items.append({"kind": "event", "id": e.id, "role": "note" if e.kind == "note" else "event", "at": e.at,
                          "author": e.actor, "text": e.detail.get("text") or THREAD_EVENTS[e.kind]})
    items.sort(key=lambda i: (i["at"], i["kind"] == "event", i["id"]))
    status = ds.desk.outbox.status([i["id"] for i in items if i["role"] in ("agent", "bot")]) \
        if ticket.channel != WEB else {}
    for i in items:
        i["delivery"] = DELIVERY_JA.get(status.get(i["id"])) if i["kind"] == "message" else None
        i["undelivered"] = status.get(i["id"]) in ("failed", "unreachable")
    return items
