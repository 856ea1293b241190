"""The conversation core: one message in, one reply out, whatever the channel.

`Core.reply` validates the message, replays one already handled under the same idempotency key,
and otherwise reads the conversation's state (bot/conversation/state.py): while the desk holds it, the message is
stored for the agent and the bot stays silent; a closed conversation starts afresh with the bot.
`Core.decide` is the decision alone: a pressed button (its id resolved against the last reply's
memory), intents (greeting, thanks, help, a request for a person), a request for a member record
(bot/lookups/answer.py, when the core was given the records), a follow-up read against the last topic, then
the knowledge-base search judged by its confidence (bot/conversation/answers.py).

A conversation belongs to the account that opened it (`Asker.account`; None for anonymous web
users): every call that reads or writes it with an asker checks that, and answers a stranger exactly
as it answers an unknown id, so a staff member's lookups stay theirs after sign-out.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Callable, Sequence

from bot.conversation import intents
from bot.conversation.actions import CallDesk
from bot.conversation.answers import Answers
from bot.conversation.buttons import (ARTICLE_PAYLOAD, BUTTON_ID_BYTES, CHOICE_BUTTON, HANDOFF_BUTTON, HELP_BUTTON,
                      LOOKUP_BUTTON, Button)
from bot.conversation.choices import ArticleChoice
from bot.errors import ConversationNotFound, EmptyMessage, MessageNotFound, MessageTooLong, NotAnAgent, NotAReply
from bot.accounts.linking import LinkCodes, MemberLink
from bot.lookups.requests import quick_buttons
from bot.lookups.answer import Lookups
from bot.model import Asker, Conversation, DeskHold, Message, NewConversation, Reply, Turn
from bot.numbers import whole_number
from bot.conversation.phrases import (GREETING_TEXT, HANDOFF_MEMBER_NOTE, HANDOFF_TEXT, HELP_TEXT, STAFF_HELP, STAFF_NOTE,
                      STALE_BUTTON_TEXT, THANKS_TEXT)
from bot.privacy.redaction import redact
from bot.conversation.state import BOT, CLOSED, DESK_HOLDS, WITH_AGENT, StateChanged
from bot.desk.hours import JST, BusinessHours, stamp
from bot.store.database import Store

HELP_BUTTON_VALUE = Button("使い方", HELP_BUTTON)


def system_clock() -> datetime:
    return datetime.now(JST)


class Core:
    """Decides and records replies. Give it a searcher (kb.search.Searcher), a Store and a clock.

    The clock returns an aware datetime; "today" for past-event checks is its date in Japan.
    `answer_at` and `choices_at` split the search confidence into answer / 「もしかして」 / unknown.
    `hours` is the desk's line (BusinessHours.from_settings): every reply that sends the user to the
    desk names its number and hours from it.
    """

    def __init__(self, searcher, store: Store, clock: Callable[[], datetime] = system_clock, *,
                 max_chars: int = 2000, answer_at: float | None = None, choices_at: float | None = None,
                 passage_chars: int = 400, records=None, link_code_minutes: int = 15,
                 hours: BusinessHours = BusinessHours(), desk=None):
        if answer_at is None:
            from kb.search import CONFIDENCE_THRESHOLD
            answer_at = CONFIDENCE_THRESHOLD
        self.searcher, self.store, self.clock, self.hours = searcher, store, clock, hours
        # Below half the answer threshold a match is noise (the search's own suggest cut-off, too).
        choices_at = answer_at / 2 if choices_at is None else choices_at
        self.max_chars, self.answer_at, self.choices_at = max_chars, answer_at, choices_at
        self.answers = Answers(searcher, self.today, answer_at=answer_at, choices_at=choices_at,
                               passage_chars=passage_chars, hours=hours)
        self.links = LinkCodes(store, timedelta(minutes=link_code_minutes))
        # `records` (a records.lookup.Records) turns on record lookups; without it the core answers
        # from the knowledge base only, as before.
        self.lookups = (Lookups(records, self.links, self.clock, desk=hours.contact())
                        if records is not None else None)
        # The operations desk (bot/desk/handoff.py's Handoff, built by helpdesk/services.py): it answers the
        # messages about the desk while the bot holds the conversation (`handle`), and takes the user's
        # messages while the desk holds it (`held`). Without it the bot only gives the number.
        self.desk = desk

    # -- conversations -----------------------------------------------------------------------------

    def now(self) -> str:
        return stamp(self.clock)

    def today(self) -> date:
        return self.clock().astimezone(JST).date()

    def open_conversation(self, channel: str, asker: Asker) -> NewConversation:
        return self.store.create_conversation(channel, asker.role, self.now(), owner=asker.account)

    def conversation_for_chat(self, channel: str, external_chat_id: str, asker: Asker) -> Conversation:
        """The conversation of a messaging chat (a Telegram chat id), opened on its first message.

        It belongs to `asker.account` ("telegram:<user id>", linked or not), so it keeps one owner
        before and after linking; another account in the same chat gets ConversationNotFound.
        """
        conversation = self.store.open_for_chat(channel, str(external_chat_id), asker.role, self.now(),
                                                asker.account)
        if conversation.owner != asker.account:
            raise ConversationNotFound(conversation.id)
        return conversation

    def conversation(self, conversation_id: str, token: str | None = None, asker: Asker | None = None) -> Conversation:
        """The conversation, if `token` opens it (None: trusted caller) and it belongs to `asker`'s
        account (None: not checked); otherwise ConversationNotFound, the same as for an unknown id."""
        conversation = self.store.conversation(conversation_id, token)
        if asker is not None and conversation.owner != asker.account:
            raise ConversationNotFound(conversation_id)
        return conversation

    def move(self, conversation_id: str, wanted: str, expected: str | None = None) -> Conversation:
        """Change the conversation's state (see bot/conversation/state.py); the store refuses undeclared moves."""
        return self.store.move(conversation_id, wanted, expected)

    def history(self, conversation_id: str, token: str | None = None, asker: Asker | None = None) -> list[Message]:
        self.conversation(conversation_id, token, asker)
        return self.store.messages(conversation_id)

    def desk_hold(self, conversation_id: str, token: str | None = None, asker: Asker | None = None) -> DeskHold:
        """Whether the desk holds the conversation now, and its open ticket (checked like `history`)."""
        conversation = self.conversation(conversation_id, token, asker)
        if conversation.state not in DESK_HOLDS:
            return DeskHold(False)
        ticket = self.desk.tickets.active_for(conversation_id) if self.desk is not None else None
        return DeskHold(True, ticket.number if ticket else None)

    def feedback(self, message_id: int, helpful: bool, token: str | None = None,
                 asker: Asker | None = None) -> Message:
        """Record 役に立った/役に立たなかった on an answer (other replies are not rated: NotAReply)."""
        if asker is not None:
            try:
                self.conversation(self.store.message(message_id).conversation_id, None, asker)
            except ConversationNotFound:
                raise MessageNotFound(message_id) from None
        return self.store.set_feedback(message_id, helpful, self.now(), token)

    def next_step(self, message_id: int, token: str | None = None, asker: Asker | None = None) -> Message:
        """What to try after 「役に立たなかった」 on an answer: other articles the question may have
        meant (「もしかして」), rephrasing, the desk. Stored as a bot message (its choices are the
        memory a pressed button is read against); asking again returns the same message."""
        answer = self.store.message(message_id)
        self.conversation(answer.conversation_id, token, asker)
        if answer.role != "bot" or answer.reply is None or answer.reply.kind != "answer":
            raise NotAReply(message_id)
        done = self.store.follow_up_of(message_id)
        if done is not None:
            return done
        question = self.store.message(answer.in_reply_to).text if answer.in_reply_to else None
        reply = self.answers.next_step(question, answer.reply.topic)
        return self.store.add_bot_message(answer.conversation_id, reply, self.now(), message_id,
                                          redact(reply.full_text))

    def transcript(self, conversation_id: str) -> list[Message]:
        """The conversation as it may leave the asker's own view (for the desk): every message's
        redacted text, member numbers, codes and names masked, and no reply values."""
        return [replace(m, text=red if red is not None else redact(m.text), reply=None)
                for m, red in self.store.redacted_messages(conversation_id)]

    def agent_message(self, conversation_id: str, text: str, agent: Asker) -> Message:
        """A desk agent writes in a conversation they hold (state `with_agent`)."""
        if agent.role != "desk":
            raise NotAnAgent(agent.role)
        text = self.validate(text)
        current = self.store.state(conversation_id)
        if current != WITH_AGENT:
            raise StateChanged(conversation_id, WITH_AGENT, current)
        return self.store.add_agent_message(conversation_id, text, agent.display_name or "担当者", self.now(),
                                            redact(text))

    # -- linking a messaging account to a member ---------------------------------------------------

    def issue_link_code(self, asker: Asker, member_number: str):
        """A one-time link code for a member within the staff member's scope (see bot/lookups/answer.py)."""
        if self.lookups is None:
            from records.errors import DatabaseMissing
            raise DatabaseMissing("records")
        return self.lookups.issue_link_code(asker, member_number)

    def consume_link_code(self, code: str, channel: str, external_user_id: str,
                          now: datetime | None = None) -> MemberLink:
        """Link a messaging account to the member number of a valid code, spending the code.

        Raises bot.accounts.linking.LinkCodeInvalid (unknown, expired or used: one message for all three).
        """
        return self.links.consume(code, channel, external_user_id, now or self.clock())

    def spend_link_code(self, code: str, channel: str, now: datetime | None = None) -> bool:
        """Make a code that others have seen useless (see LinkCodes.spend)."""
        return self.links.spend(code, channel, now or self.clock())

    def new_conversation_for_chat(self, channel: str, external_chat_id: str) -> bool:
        """The chat's next message starts a new conversation: the member behind the account changed,
        and one transcript (which the desk reads) must never mix two members."""
        return self.store.detach_chat(channel, str(external_chat_id))

    def linked_asker(self, channel: str, external_user_id: str) -> Asker:
        """Who a messaging account asks as: the linked member, or an anonymous asker with an account of
        its own ("telegram:<user id>"), so its conversation has the same owner before and after linking."""
        account = f"{channel}:{external_user_id}"
        link = self.links.linked_member(channel, external_user_id)
        if link is None:
            return Asker(account=account)
        return Asker(role="member", member_number=link.member_number, account=account)

    # -- the one entry point ---------------------------------------------------------------------------

    def reply(self, conversation_id: str, text: str | None, asker: Asker, channel: str, *,
              idempotency_key: str | None = None, button: str | None = None) -> Turn:
        """Answer one message and store both sides; a repeated idempotency key replays the first answer.

        `button` is the id of a pressed button (a previous reply's `Button.id`); `text` is then what
        the channel showed as the user's message and may be empty. While the desk holds the
        conversation the question is stored alone and `Turn.answer` is None.
        """
        button = self.validate_button(button)
        text = self.validate(text) if text or button is None else None
        conversation = self.conversation(conversation_id, None, asker)
        done = self.store.answered(conversation_id, idempotency_key, text, button)
        if done:
            return Turn(*done, replayed=True)
        history = self.store.recent_replies(conversation_id)
        shown = text or self.button_text(button, history)
        redacted_question = redact(shown)
        if conversation.state == CLOSED:  # a new question after the desk closed it: the bot again
            try:
                self.store.move(conversation_id, BOT, expected=CLOSED)
            except StateChanged:
                pass
        elif conversation.state in DESK_HOLDS:
            return self.held(conversation_id, shown, button, idempotency_key, redacted_question)
        if self.desk is not None:
            turn = self.desk.handle(conversation_id, shown, button, asker, channel, history, idempotency_key)
            if turn is not None:
                return turn
        picking = button is not None or shown.startswith(ARTICLE_PAYLOAD) or (history and history[0].choices)
        reply = self.decide(
            shown, asker, history=history, button=button,
            choice_question=self.store.last_choice_question(conversation_id) if picking else None,
        )
        unanswered = None
        if reply.kind in ("unknown", "out_of_scope"):
            unanswered = {"confidence": reply.confidence, "channel": channel, "asker_role": asker.role}
        # The redacted forms are what the desk and the unanswered log see (never the asker's own view);
        # a concealed secret (a link code) is in neither.
        kept = reply.stored()
        try:
            question, answer, replayed = self.store.save_turn(
                conversation_id, shown, reply, self.now(), idempotency_key=idempotency_key,
                unanswered=unanswered, redacted_question=redacted_question,
                redacted_answer=kept.redacted or redact(kept.full_text), button=button, state=BOT)
        except StateChanged:  # the desk took the conversation meanwhile: the bot keeps quiet
            return self.held(conversation_id, shown, button, idempotency_key, redacted_question)
        return Turn(question, answer, replayed)

    def held(self, conversation_id: str, text: str, button: str | None, key: str | None, redacted: str) -> Turn:
        """Store a message while the desk holds the conversation: no bot answer, unless the desk
        acknowledges it (its `held` hook)."""
        question, answer, replayed = self.store.save_turn(conversation_id, text, None, self.now(), button=button,
                                                          idempotency_key=key, redacted_question=redacted)
        if not replayed and self.desk is not None:
            answer = self.desk.held(conversation_id, question)
        return Turn(question, answer, replayed)

    def validate(self, text: str | None) -> str:
        text = (text or "").strip()
        if not text:
            raise EmptyMessage()
        if len(text) > self.max_chars:
            raise MessageTooLong(len(text), self.max_chars)
        return text

    @staticmethod
    def validate_button(button: str | None) -> str | None:
        if button is None:
            return None
        if not isinstance(button, str) or not button.strip() or len(button.encode()) > BUTTON_ID_BYTES:
            raise EmptyMessage()
        return button.strip()

    @staticmethod
    def button_text(button: str, history: Sequence[Reply]) -> str:
        """What a pressed button said, when the channel sent only its id: its echo or label."""
        for b in (b for r in history for b in r.buttons):  # the newest reply that offered it
            if b.id == button:
                return b.payload
        return button

    # -- deciding ----------------------------------------------------------------------------------

    def decide(self, text: str, asker: Asker, *, history: Sequence[Reply] = (),
               choice_question: str | None = None, button: str | None = None) -> Reply:
        """Choose the reply to `text` (or to a pressed `button`), given the recent replies (newest first).

        `choice_question` is the question that led to the last 「もしかして」, if the caller has it.
        """
        last = history[0] if history else None
        if button is not None:
            # Choices are kept per message: a button pressed under an earlier reply (/status sends the
            # member record with its buttons, then the application) means that reply's choices.
            last = next((r for r in history if any(b.id == button for b in r.buttons)), last)
        if button is None and last is not None:
            # Channels that send text (and people who type a label) press a button by its words.
            button = next((b.id for b in last.buttons if text in (b.payload, b.label)), None)
        if button is None and text.startswith(ARTICLE_PAYLOAD):
            button = text
        if button is not None:
            pressed = self.press(button, last, asker, choice_question)
            if pressed is not None:
                return pressed
        folded = intents.fold(text)
        if intents.is_handoff(folded):
            return self.handoff(asker)
        if intents.is_greeting(folded):
            return self.with_quick_actions(
                Reply(self.greeting_word(folded) + GREETING_TEXT, "greeting", buttons=(HELP_BUTTON_VALUE,)),
                asker, STAFF_NOTE)
        if intents.is_thanks(folded):
            return Reply(THANKS_TEXT, "thanks")
        if intents.is_help(folded):
            return self.help(asker)
        if self.lookups is not None:
            request = self.lookups.wants(text, asker, history)
            if request is not None:
                return self.lookups.answer(request, asker)
        topic = next((r for r in history if r.topic), None)
        if topic is not None and intents.is_follow_up(folded):
            reply = self.answers.follow_up(text, topic, asker)
            if reply is not None:
                return reply
        return self.answers.search(text, asker)

    def press(self, button: str, last: Reply | None, asker: Asker, question: str | None) -> Reply | None:
        """The reply to a pressed button id; None when the id is not the core's (then read the text)."""
        if button.startswith(ARTICLE_PAYLOAD):
            return self.answers.chosen_article(button[len(ARTICLE_PAYLOAD):].strip(), question, asker)
        if button == HANDOFF_BUTTON:
            return self.handoff(asker)
        if button == HELP_BUTTON:
            return self.help(asker)
        if button.startswith(LOOKUP_BUTTON):
            return self.lookups.prompt(button[len(LOOKUP_BUTTON):], asker) if self.lookups else None
        index = whole_number(button[len(CHOICE_BUTTON):]) if button.startswith(CHOICE_BUTTON) else None
        if index is None and last is not None:  # a reply stored before ids: its buttons stand for its choices
            index = next((i for i, b in enumerate(last.buttons) if b.id == button), None)
        if index is None or last is None or index >= len(last.choices):
            stale = button.startswith(CHOICE_BUTTON)
            return Reply(STALE_BUTTON_TEXT, "unknown", actions=(self.answers.escalation,)) if stale else None
        choice = last.choices[index]
        if isinstance(choice, ArticleChoice):
            return self.answers.chosen_article(choice.slug, question, asker)
        return self.lookups.choose(choice, asker) if self.lookups else None

    def quick_actions(self, asker: Asker) -> tuple[Button, ...]:
        """The lookup buttons for signed-in staff (none for anyone else, or without records)."""
        return quick_buttons() if self.lookups is not None and asker.role == "staff" else ()

    def with_quick_actions(self, reply: Reply, asker: Asker, note: str) -> Reply:
        buttons = self.quick_actions(asker)
        if not buttons:
            return reply
        text = reply.text + note.format(name=asker.display_name or "職員")
        return replace(reply, text=text, buttons=reply.buttons + buttons)

    def help(self, asker: Asker) -> Reply:
        return self.with_quick_actions(Reply(HELP_TEXT.format(desk=self.hours.contact()), "help"), asker, STAFF_HELP)

    @staticmethod
    def greeting_word(folded: str) -> str:
        if folded.startswith("おはよう"):
            return "おはようございます。"
        if folded.startswith(("こんばんは", "こんばんわ")):
            return "こんばんは。"
        return "こんにちは。"

    # Kept on the core for the article pages (handlers/web/pages.py), which show an event's status alike.
    def event_status(self, event_date: str | None) -> str | None:
        return self.answers.event_status(event_date)

    def by_confidence(self, results, asker: Asker = Asker()) -> Reply:
        return self.answers.by_confidence(results, asker)

    def handoff(self, asker: Asker) -> Reply:
        text = HANDOFF_TEXT.format(desk=self.hours.contact()) + (HANDOFF_MEMBER_NOTE if asker.role == "member" else "")
        return Reply(text, "handoff", actions=(CallDesk.of(self.hours),))
