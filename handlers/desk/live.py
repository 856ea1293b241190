"""The ticket page without a reload: `GET /desk/tickets/<n>/live?after=<message id>&event=<event id>&wait=<s>`.

desk/ticket-live.js asks with the newest message and audit event its page shows; the answer is held
(bot/messaging/live.py, the same watcher and slots as the widget's) until the ticket's thread has a newer
message (the user's, another agent's, the bot's) or a newer event (a note, a change of state or of
assignee), or the time runs out. It carries the new thread items rendered by the page's own macro,
the ticket's state, and the other agents who have the page open: each page's request marks its
agent as viewing (table ticket_viewers), and an agent counts as viewing for VIEWER_SECONDS after.
"""
from __future__ import annotations

import time

from flask import jsonify, render_template, request

from bot.messaging.live import MAX_WAIT, conversation_key, ticket_key
from bot.numbers import whole_number
from helpdesk.errors import CodedError
from handlers.desk.auth import acting_agent, agent_required, desk_services
from handlers.desk.view import ticket_or_404, timeline
from handlers.web.live import wait_seconds, watch

#: An agent whose page stopped asking is no longer shown after this (a held request lasts ≤ MAX_WAIT).
VIEWER_SECONDS = MAX_WAIT + 15


def id_parameter(name: str) -> int:
    value = request.args.get(name, "0")
    number = whole_number(value)
    if number is None:
        raise CodedError("invalid_parameter", field=name, expected="0以上の整数")
    return number


def page_state(number: int, items, events) -> dict:
    """What the page starts from: its newest message and event, and who else has it open."""
    ds, agent = desk_services(), acting_agent()
    ds.tickets.seen_by(number, agent.login_id, time.time())
    messages = [i["id"] for i in items if i["kind"] == "message"]
    start = ds.tickets.get(number).start_message_id or 0
    return {"after": max(messages, default=start), "event": max((e.id for e in events), default=0),
            "viewers": viewers(number)}


def viewers(number: int) -> list[str]:
    ds, agent = desk_services(), acting_agent()
    names = ds.agents.names()
    return [names.get(a, a) for a in ds.tickets.viewers(number, agent.login_id, time.time() - VIEWER_SECONDS)]


@agent_required
def ticket_live(number: int):
    ticket = ticket_or_404(number)
    after, event, seconds = id_parameter("after"), id_parameter("event"), wait_seconds()
    ds = desk_services()
    ds.tickets.seen_by(number, acting_agent().login_id, time.time())

    def news():
        current = ds.tickets.get(number)
        newest_event = max((e.id for e in ds.tickets.events(number)), default=0)
        items = [i for i in timeline(current)
                 if i["id"] > (after if i["kind"] == "message" else event)]
        return (current, items, newest_event) if items or newest_event > event else None

    found = watch().wait([conversation_key(ticket.conversation_id), ticket_key(number)], seconds, news)
    current, items, newest_event = found or (ds.tickets.get(number), [], event)
    html = render_template("desk/_live.html", items=items, names=ds.agents.names())
    response = jsonify({
        "items": html, "state": current.state, "state_ja": current.state_ja, "active": current.active,
        "after": max([i["id"] for i in items if i["kind"] == "message"], default=after),
        "event": newest_event, "viewers": viewers(number),
    })
    response.headers["Cache-Control"] = "no-store"
    return response
