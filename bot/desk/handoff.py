"""Handing a conversation over to the operations desk: the offer, the ticket, and the user's side after.

`Handoff.create` makes the ticket in ONE transaction with everything that belongs to it: the ticket
row with its snapshot (redacted transcript, articles shown, questions that found nothing, the asker's
role, association and channel), its first audit event, the conversation's move bot → waiting_desk,
and the reply that tells the user the ticket number. A SIGKILL at any point leaves either all of it or
none of it, and since at most one unfinished ticket may exist per conversation (a unique index) and
the check runs inside the write lock, pressing the button twice finds the first ticket.

While the desk holds the conversation the bot is silent: `user_wrote` records the user's message on
the ticket (a pending ticket becomes open again) and acknowledges it once per ticket.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from bot.conversation import intents
from bot.conversation import state
from bot.desk import tickets
from bot.accounts.staff import association_name
from bot.conversation.actions import CallDesk
from bot.conversation.buttons import DESK_NAME, HANDOFF_BUTTON, Button
from bot.desk.hours import BusinessHours, phone_text, stamp
from bot.model import Asker, Message, Reply, Turn
from bot.desk.tickets import REASONS, Ticket, TicketStore

CONFIRM_BUTTON = "handoff:yes:"  # + reason: what led to the offer, kept on the ticket
CANCEL_BUTTON = "handoff:no"
HUMAN_COMMAND = "/human"
#: Replies that found nothing to answer with: nothing at all, no clear article (choices offered), or
#: an answer the user said did not help (the next step after it).
UNANSWERED_KINDS = ("unknown", "out_of_scope", "choices", "next_step")
NOTE_CHARS = 500
SUBJECT_CHARS = 80

OFFER_TEXT = (
    "{desk}の担当者にお問い合わせを送りますか。これまでのやり取りを担当者に引き継ぎますので、"
    "同じことを説明し直す必要はありません（会員番号やお名前は伏せ字にして引き継ぎます）。"
    "担当者に伝えたいことがあれば、一言入力して送信してください。そのまま送る場合は「担当者に問い合わせる」を押してください。"
    "お電話（{desk} {phone}、{when}）でもご相談いただけます。"
)  # {phone} and {when} from the settings (bot/desk/hours.py)
OFFER_AFTER = {
    "not_helpful": "お役に立てず申し訳ありません。",
    "unanswered": "続けてお答えできず申し訳ありません。",
}
CANCELLED_TEXT = "お問い合わせは送りませんでした。引き続き、ご質問を入力してください。"
CREATED_TEXT = (
    "{desk}へお問い合わせを送りました。お問い合わせ番号 #{number} です。担当者から、このチャットに返信します。"
    "補足があれば、このまま入力してください。"
)
ALREADY_TEXT = "お問い合わせ番号 #{number} で、担当者からの返信をお待ちください。補足があれば、このまま入力してください。"
ACK_TEXT = "担当者にお伝えしました。返信をお待ちください。"


def offer(reason: str = "words", hours: BusinessHours = BusinessHours()) -> Reply:
    """Ask before creating a ticket: a confirm button (carrying `reason`) and a cancel button."""
    text = OFFER_AFTER.get(reason, "") + OFFER_TEXT.format(desk=DESK_NAME, phone=phone_text(hours.phone),
                                                            when=hours.when())
    return Reply(text, "handoff_offer", buttons=(
        Button("担当者に問い合わせる", CONFIRM_BUTTON + reason, echo="担当者に問い合わせる"),
        Button("やめる", CANCEL_BUTTON),
    ), actions=(CallDesk.of(hours),))


def confirmed_reason(button: str | None) -> str | None:
    """The reason carried by a pressed confirm button, or None when `button` is not one."""
    if button and button.startswith(CONFIRM_BUTTON):
        reason = button[len(CONFIRM_BUTTON):]
        return reason if reason in REASONS else "button"
    return None


def cancelled() -> Reply:
    return Reply(CANCELLED_TEXT, "handoff_cancelled")


@dataclass(frozen=True)
class Created:
    """The outcome of `Handoff.create`: the ticket, whether this call made it, and the reply stored."""

    ticket: Ticket
    created: bool
    reply: Reply
    question: Message | None = None
    answer: Message | None = None


def asks_for_person(text: str | None, button: str | None, history) -> str | None:
    """Why this message asks for a person (a REASONS value), or None when it does not."""
    if button == HANDOFF_BUTTON:
        last = history[0] if history else None
        if last is not None and last.kind == "next_step":
            return "not_helpful"
        if len(history) >= 2 and all(r.kind in ("unknown", "out_of_scope") for r in history[:2]):
            return "unanswered"
        return "button"
    if button is not None or not text:
        return None
    if text.strip().split("@")[0].lower() == HUMAN_COMMAND:
        return "command"
    return "words" if intents.is_handoff(intents.fold(text)) else None


def real_question(m: Message) -> bool:
    """A question the user typed: not a pressed button, not a request for a person (「担当者と話したい」,
    「/human」), which say nothing about what the ticket is about."""
    return m.role == "user" and not m.button and asks_for_person(m.text, None, []) is None


def snapshot(messages: list[tuple[Message, str | None]], redact: Callable[[str], str]) -> dict:
    """What the ticket carries from the conversation, all redacted: transcript, articles, unanswered.

    `questions` are the user's real questions (real_question), whose last one is the ticket's subject;
    `unfound` those the bot could not answer (UNANSWERED_KINDS), each once.
    """
    transcript, articles, unfound, questions, seen = [], [], [], [], set()
    last_user = None
    for m, red in messages:
        text = red if red is not None else redact(m.text)
        transcript.append({"id": m.id, "role": m.role, "text": text, "at": m.created_at,
                           "kind": m.reply.kind if m.reply else None, "author": m.author})
        if real_question(m):
            last_user = text
            questions.append(text)
        if m.reply is None:
            continue
        shown = [(s.slug, s.title) for s in m.reply.sources]
        titles = [b.label for b in m.reply.buttons]
        shown += [(c.slug, titles[i] if i < len(titles) else c.slug)
                  for i, c in enumerate(m.reply.choices) if getattr(c, "slug", None)]
        for slug, title in shown:
            if slug not in seen:
                seen.add(slug)
                articles.append({"slug": slug, "title": title})
        if m.reply.kind in UNANSWERED_KINDS and last_user and last_user not in unfound:
            unfound.append(last_user)  # what the knowledge base did not answer
    return {"transcript": transcript, "articles": articles, "unfound": unfound, "questions": questions}


class Handoff:
    """Creates tickets from conversations and handles the user's side while the desk holds one."""

    def __init__(self, store, tickets: TicketStore, hours: BusinessHours, clock: Callable[[], datetime],
                 redact: Callable[[str], str]):
        self.store, self.tickets, self.hours, self.clock, self.redact = store, tickets, hours, clock, redact

    def now(self) -> str:
        """Japan time, like every time the core stores, so that times compare as strings."""
        return stamp(self.clock)

    def add_message(self, conn, conversation_id: str, role: str, text: str, at: str, *, reply: Reply | None = None,
                    in_reply_to: int | None = None, key: str | None = None, button: str | None = None,
                    author: str | None = None) -> int:
        """Insert one message with the store's own statement, inside the caller's transaction."""
        return conn.execute(self.store.INSERT_MESSAGE_SQL, {
            "conversation_id": conversation_id, "role": role, "text": text, "in_reply_to": in_reply_to,
            "reply": json.dumps(reply.to_dict(), ensure_ascii=False) if reply else None,
            "idempotency_key": key, "created_at": at, "button": button, "author": author,
            "redacted": self.redact(text),
        }).lastrowid

    # -- creating a ticket ---------------------------------------------------------------------------

    def created_reply(self, ticket: Ticket, fresh: bool) -> Reply:
        text = (CREATED_TEXT if fresh else ALREADY_TEXT).format(desk=DESK_NAME, number=ticket.number)
        notice = self.hours.notice(self.clock())
        return Reply(text + ("\n" + notice if notice else ""), "ticket")

    def create(self, conversation_id: str, asker: Asker, channel: str, *, reason: str = "api",
               note: str | None = None, user_text: str | None = None, button: str | None = None,
               idempotency_key: str | None = None) -> Created:
        """Make the ticket of this conversation, or find its unfinished one; one transaction.

        `user_text` is what the user sent to ask for it (a pressed button's echo, 「/human」), stored
        as their message before the reply with the number; the API's handoff has none.
        """
        note = " ".join((note or "").split())[:NOTE_CHARS] or None
        at = self.now()
        with self.store.transaction() as conn:
            done = self.store.answered(conversation_id, idempotency_key, user_text, button)
            existing = self.tickets.active_for(conversation_id, conn) or (
                self.tickets.latest_for(conversation_id, conn) if done else None)
            if existing is not None:
                question, answer = done or (None, None)
                if user_text and not done:
                    question, answer = self.store_turn(conn, conversation_id, user_text, at, button, idempotency_key,
                                                       self.created_reply(existing, False))
                return Created(existing, False, self.created_reply(existing, False), question, answer)
            messages = self.store.redacted_messages(conversation_id)
            snap = snapshot(messages, self.redact)
            subject = note or (snap["questions"][-1] if snap["questions"] else "（質問なし）")
            number = self.tickets.insert(
                conn, conversation_id=conversation_id, channel=channel, asker_role=asker.role,
                asker_name=asker.display_name if asker.role == "staff" else None,
                association_code=asker.association_code,
                association_name=association_name(asker.association_level, asker.association_code)
                if asker.association_level and asker.association_code else None,
                reason=reason if reason in REASONS else "api", note=self.redact(note) if note else None,
                subject=subject[:SUBJECT_CHARS], transcript=snap["transcript"], articles=snap["articles"],
                unfound=snap["unfound"], start_message_id=messages[-1][0].id if messages else None,
                created_at=at,
            )
            self.tickets.add_event(conn, number, "user", "created", at, {"reason": reason, "channel": channel})
            if self.store.state(conversation_id, conn) == state.CLOSED:
                self.store.move_state(conn, conversation_id, state.BOT)  # a new question after closing starts afresh
            self.store.move_state(conn, conversation_id, state.WAITING_DESK)
            ticket = self.tickets.get(number, conn)
            reply = self.created_reply(ticket, True)
            if user_text:
                question, answer = self.store_turn(conn, conversation_id, user_text, at, button, idempotency_key, reply)
            else:
                aid = self.add_message(conn, conversation_id, "bot", reply.text, at, reply=reply)
                question, answer = None, Message(aid, conversation_id, "bot", reply.text, at, reply=reply)
        return Created(ticket, True, reply, question, answer)

    def store_turn(self, conn, conversation_id: str, text: str, at: str, button: str | None, key: str | None,
                   reply: Reply) -> tuple[Message, Message]:
        qid = self.add_message(conn, conversation_id, "user", text, at, key=key, button=button)
        aid = self.add_message(conn, conversation_id, "bot", reply.text, at, reply=reply, in_reply_to=qid)
        return (Message(qid, conversation_id, "user", text, at, key, button=button),
                Message(aid, conversation_id, "bot", reply.text, at, in_reply_to=qid, reply=reply))

    # -- the core's hook: a message while the bot holds the conversation ---------------------------------

    def handle(self, conversation_id: str, text: str, button: str | None, asker: Asker, channel: str,
               history, idempotency_key: str | None = None) -> Turn | None:
        """The turn for a message about the desk (asking for a person, confirming, cancelling, or the
        line typed after the offer); None for any other message, which the core answers as usual."""
        last = history[0] if history else None
        if button is None and last is not None and last.kind == "handoff_offer":
            button = next((b.id for b in last.buttons if text in (b.label, b.payload)), None)
            if button is None:  # the line the offer asked for: it goes on the ticket as the note
                confirm = next(b.id for b in last.buttons if b.id.startswith(CONFIRM_BUTTON))
                return self.created_turn(conversation_id, asker, channel, confirm, text, None, idempotency_key,
                                         note=text)
        if confirmed_reason(button):
            return self.created_turn(conversation_id, asker, channel, button, text, button, idempotency_key)
        if button == CANCEL_BUTTON:
            reply = cancelled()
        else:
            reason = asks_for_person(text, button, history)
            if reason is None:
                return None
            reply = offer(reason, self.hours)
        question, answer, replayed = self.store.save_turn(
            conversation_id, text, reply, self.now(), idempotency_key=idempotency_key, button=button,
            redacted_question=self.redact(text), redacted_answer=reply.text, state=state.BOT)
        return Turn(question, answer, replayed)

    def created_turn(self, conversation_id, asker, channel, confirm: str, text: str, button: str | None,
                     key: str | None, note: str | None = None) -> Turn:
        created = self.create(conversation_id, asker, channel, reason=confirmed_reason(confirm), note=note,
                              user_text=text, button=button, idempotency_key=key)
        return Turn(created.question, created.answer, replayed=not created.created and created.question is not None
                    and created.question.idempotency_key == key and key is not None, opened_ticket=created.created)

    def held(self, conversation_id: str, question: Message) -> Message | None:
        """The core's hook after storing a message while the desk holds the conversation: put it on the
        ticket and return the acknowledgement (once per ticket; None after that)."""
        at = self.now()
        with self.store.transaction() as conn:
            ack = self.user_wrote(conn, conversation_id, question.id, at)
            if ack is None:
                return None
            aid = self.add_message(conn, conversation_id, "bot", ack.text, at, reply=ack, in_reply_to=question.id)
        return Message(aid, conversation_id, "bot", ack.text, at, in_reply_to=question.id, reply=ack)

    # -- while the desk holds the conversation ---------------------------------------------------------

    def new_question(self, conversation_id: str) -> Ticket | None:
        """The user started a new question elsewhere (the widget's 「新しい質問」) while this conversation's
        ticket is unfinished: the ticket says so, and keeps the conversation, so the agent's replies
        still reach the user. None when the conversation has no unfinished ticket."""
        with self.store.transaction() as conn:
            ticket = self.tickets.active_for(conversation_id, conn)
            if ticket is not None:
                at = self.now()
                self.tickets.add_event(conn, ticket.number, "user", "new_question", at)
                conn.execute(self.tickets.TOUCH_SQL, {"at": at, "number": ticket.number})
        return ticket

    ACKED_SQL = "SELECT 1 FROM ticket_events WHERE ticket_number = :number AND kind = 'acknowledged'"

    def user_wrote(self, conn, conversation_id: str, message_id: int, at: str) -> Reply | None:
        """The user wrote while the desk holds the conversation (inside the caller's transaction).

        The message goes on the ticket's log; a ticket waiting for the user is open again; the first
        such message of a ticket is acknowledged (the returned reply) while no agent has answered yet,
        later ones are not.
        """
        ticket = self.tickets.active_for(conversation_id, conn)
        if ticket is None:
            return None
        self.tickets.add_event(conn, ticket.number, "user", "user_message", at, message_id=message_id)
        if ticket.state == tickets.PENDING:
            self.tickets.set_state(conn, ticket, tickets.OPEN, "user", at)
        else:
            conn.execute(self.tickets.TOUCH_SQL, {"at": at, "number": ticket.number})
        # Once an agent holds the conversation they answer; the bot never talks over them.
        waiting = self.store.state(conversation_id, conn) == state.WAITING_DESK
        if not waiting or conn.execute(self.ACKED_SQL, {"number": ticket.number}).fetchone():
            return None
        self.tickets.add_event(conn, ticket.number, "system", "acknowledged", at)
        return Reply(ACK_TEXT, "desk_ack")

