"""The conversation core: one message in, one reply out, whatever the channel.

`Core.reply` validates the text, replays a message already answered under the same idempotency key,
otherwise decides a reply and stores question and answer together. `Core.decide` is the decision alone:
intents first (greeting, thanks, help, a request for a person, a chosen 「もしかして」 button), then a
request for a member record (bot/lookups.py, when the core was given the records), then a follow-up
read against the last topic, then the knowledge-base search judged by its confidence.

A conversation belongs to the account that opened it (`Asker.account`; None for anonymous): every
call that reads or writes it with an asker checks that, and answers a stranger exactly as it answers
an unknown id, so a staff member's lookups stay theirs after sign-out.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Sequence

from . import intents
from .errors import ConversationNotFound, EmptyMessage, MessageNotFound, MessageTooLong
from .linking import LinkCodes, MemberLink
from .lookups import Lookups, quick_buttons, redact
from .model import (
    ARTICLE_PAYLOAD, DESK_NAME, DESK_PHONE, HANDOFF_PAYLOAD,
    Asker, Button, Conversation, Message, NewConversation, Reply, Source, Turn,
)
from .store import Store
from .text import event_state, japanese_date, plain, trim

JST = timezone(timedelta(hours=9), "JST")  # Japan has no daylight saving: a fixed offset is exact

DESK = f"{DESK_NAME}（フリーダイヤル {DESK_PHONE}）"
# Offered whenever the knowledge base falls short; a channel draws it as a button that sends `payload`.
ESCALATION = {"type": "offer_escalation", "label": "担当者に問い合わせる", "payload": HANDOFF_PAYLOAD,
              "desk": DESK_NAME, "phone": DESK_PHONE}
# The desk's number, which a channel draws as a link (tel: on phones) rather than as another offer.
PHONE_ACTION = {"type": "handoff", "label": f"{DESK_NAME}に電話する", "desk": DESK_NAME, "phone": DESK_PHONE,
                "tel": "tel:" + DESK_PHONE.replace("-", "")}

GREETING_TEXT = (
    "MAMISヘルプデスクです。MAMIS（医師会会員情報システム）についてのご質問に、ナレッジベースの記事から"
    "お答えします。知りたいことを文章で入力してください。"
)
THANKS_TEXT = "どういたしまして。ほかにもご不明な点があれば、お気軽にご質問ください。"
HELP_TEXT = (
    "MAMISヘルプデスクの使い方です。\n"
    "・知りたいことを文章で入力してください（例：「日医ニュースの送付先を自宅に変更したい」）。\n"
    "・回答には、もとになった記事へのリンクと、その記事の更新日を表示します。\n"
    "・答えが一つに絞れないときは「もしかして」として候補を表示します。選ぶとその記事からお答えします。\n"
    "・「それはいつですか」「場所は？」のように、直前の話題に続けて質問できます。\n"
    f"・担当者と話したいときは「担当者と話したい」と入力してください。{DESK}をご案内します。"
)
HANDOFF_TEXT = (
    f"担当者へのご相談は、{DESK}で承ります。お電話でお問い合わせください。"
)
HANDOFF_MEMBER_NOTE = "会員の先生方は、ご所属の医師会事務局にもご相談いただけます。"
CHOICES_TEXT = "はっきりとお答えできる記事が見つかりませんでした。もしかして、次のいずれかについてのご質問でしょうか。"
UNKNOWN_TEXT = (
    "申し訳ありません。ご質問にお答えできる記事が見つかりませんでした。"
    f"別の言葉で言い換えていただくか、{DESK}へお問い合わせください。"
)
NO_ARTICLE_TEXT = "お探しの記事が見つかりませんでした。ご質問を文章で入力してください。"
STAFF_NOTE = (
    "\n{name}としてログインしています。会員番号（7桁）や先生のお名前、医療機関名で、入会手続きの状況・送付先・"
    "医療機関マスタへの掲載・かかりつけ医機能報告を照会できます（例：「会員番号1234567の入会手続きはどこまで"
    "進んでいますか」「〇〇クリニックはマスタに載っていますか」「△△先生の日医ニュースの送付先は」）。"
)
STAFF_HELP = (
    "\n・職員としてログイン中は、会員番号・申請番号・医療機関コード・先生のお名前（「〇〇先生」）・医療機関名で"
    "記録を照会できます。下のボタンからも始められます。\n"
    "・会員の先生がメッセージアプリのアカウントを連携するための連携コード（15分間・1回限り）を発行できます。"
)
CUT_NOTE = "（続きはリンク先の記事をご覧ください）"


def system_clock() -> datetime:
    return datetime.now(JST)


class Core:
    """Decides and records replies. Give it a searcher (kb.search.Searcher), a Store and a clock.

    The clock returns an aware datetime; "today" for past-event checks is its date in Japan.
    `answer_at` and `choices_at` split the search confidence into answer / 「もしかして」 / unknown.
    """

    def __init__(self, searcher, store: Store, clock: Callable[[], datetime] = system_clock, *,
                 max_chars: int = 2000, answer_at: float | None = None, choices_at: float | None = None,
                 passage_chars: int = 400, records=None, link_code_minutes: int = 15):
        if answer_at is None:
            from kb.search import CONFIDENCE_THRESHOLD
            answer_at = CONFIDENCE_THRESHOLD
        self.searcher, self.store, self.clock = searcher, store, clock
        # Below half the answer threshold a match is noise (the search's own suggest cut-off, too).
        choices_at = answer_at / 2 if choices_at is None else choices_at
        self.max_chars, self.answer_at, self.choices_at = max_chars, answer_at, choices_at
        self.passage_chars = passage_chars
        self.links = LinkCodes(store, timedelta(minutes=link_code_minutes))
        # `records` (a records.lookup.Records) turns on record lookups; without it the core answers
        # from the knowledge base only, as before.
        self.lookups = Lookups(records, self.links, self.clock) if records is not None else None

    # -- conversations -----------------------------------------------------------------------------

    def now(self) -> str:
        return self.clock().astimezone(JST).isoformat(timespec="seconds")

    def today(self) -> date:
        return self.clock().astimezone(JST).date()

    def open_conversation(self, channel: str, asker: Asker) -> NewConversation:
        return self.store.create_conversation(channel, asker.role, self.now(), owner=asker.account)

    def conversation(self, conversation_id: str, token: str | None = None, asker: Asker | None = None) -> Conversation:
        """The conversation, if `token` opens it (None: trusted caller) and it belongs to `asker`'s
        account (None: not checked); otherwise ConversationNotFound, the same as for an unknown id."""
        conversation = self.store.conversation(conversation_id, token)
        if asker is not None and conversation.owner != asker.account:
            raise ConversationNotFound(conversation_id)
        return conversation

    def history(self, conversation_id: str, token: str | None = None, asker: Asker | None = None) -> list[Message]:
        self.conversation(conversation_id, token, asker)
        return self.store.messages(conversation_id)

    def feedback(self, message_id: int, helpful: bool, token: str | None = None,
                 asker: Asker | None = None) -> Message:
        if asker is not None:
            try:
                self.conversation(self.store.message(message_id).conversation_id, None, asker)
            except ConversationNotFound:
                raise MessageNotFound(message_id) from None
        return self.store.set_feedback(message_id, helpful, self.now(), token)

    def transcript(self, conversation_id: str) -> list[Message]:
        """The conversation as it may leave the asker's own view (for the desk): every message's
        redacted text, member numbers, codes and names masked, and no reply values."""
        return [replace(m, text=red if red is not None else redact(m.text), reply=None)
                for m, red in self.store.redacted_messages(conversation_id)]

    # -- linking a messaging account to a member ---------------------------------------------------

    def issue_link_code(self, asker: Asker, member_number: str):
        """A one-time link code for a member within the staff member's scope (see bot/lookups.py)."""
        if self.lookups is None:
            from records.errors import DatabaseMissing
            raise DatabaseMissing("records")
        return self.lookups.issue_link_code(asker, member_number)

    def consume_link_code(self, code: str, channel: str, external_user_id: str,
                          now: datetime | None = None) -> MemberLink:
        """Link a messaging account to the member number of a valid code, spending the code.

        Raises bot.linking.LinkCodeInvalid (unknown, expired or used: one message for all three).
        """
        return self.links.consume(code, channel, external_user_id, now or self.clock())

    def linked_asker(self, channel: str, external_user_id: str) -> Asker:
        """Who a messaging account asks as: the linked member, or anonymous when it is not linked."""
        link = self.links.linked_member(channel, external_user_id)
        if link is None:
            return Asker()
        return Asker(role="member", member_number=link.member_number, account=f"{channel}:{external_user_id}")

    # -- the one entry point ---------------------------------------------------------------------------

    def reply(self, conversation_id: str, text: str, asker: Asker, channel: str, *,
              idempotency_key: str | None = None) -> Turn:
        """Answer one message and store both sides; a repeated idempotency key replays the first answer."""
        text = self.validate(text)
        self.conversation(conversation_id, None, asker)
        done = self.store.answered(conversation_id, idempotency_key, text)
        if done:
            return Turn(*done, replayed=True)
        history = self.store.recent_replies(conversation_id)
        picking = text.startswith(ARTICLE_PAYLOAD) or (history and history[0].kind == "choices")
        reply = self.decide(
            text, asker, history=history,
            choice_question=self.store.last_choice_question(conversation_id) if picking else None,
        )
        unanswered = None
        if reply.kind == "unknown":
            unanswered = {"confidence": reply.confidence, "channel": channel, "asker_role": asker.role}
        # The redacted forms are what the desk and the unanswered log see (never the asker's own view);
        # a concealed secret (a link code) is in neither.
        kept = reply.stored()
        question, answer, replayed = self.store.save_turn(
            conversation_id, text, reply, self.now(),
            idempotency_key=idempotency_key, unanswered=unanswered,
            redacted_question=redact(text), redacted_answer=kept.redacted or redact(kept.full_text),
        )
        return Turn(question, answer, replayed)

    def validate(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise EmptyMessage()
        if len(text) > self.max_chars:
            raise MessageTooLong(len(text), self.max_chars)
        return text

    # -- deciding ----------------------------------------------------------------------------------

    def decide(self, text: str, asker: Asker, *, history: Sequence[Reply] = (),
               choice_question: str | None = None) -> Reply:
        """Choose the reply to `text`, given the conversation's recent replies (newest first).

        `choice_question` is the question that led to the last 「もしかして」, if the caller has it.
        """
        if text.startswith(ARTICLE_PAYLOAD):
            return self.chosen_article(text[len(ARTICLE_PAYLOAD):].strip(), choice_question)
        if history and history[0].kind == "choices":
            for button, slug in zip(history[0].buttons, history[0].choices):
                if text == button.payload:
                    return self.chosen_article(slug, choice_question)
        if self.lookups is not None and history:
            chosen = self.lookups.choose(text, history[0], asker)
            if chosen is not None:
                return chosen
        folded = intents.fold(text)
        if intents.is_handoff(folded):
            return self.handoff(asker)
        if intents.is_greeting(folded):
            return self.with_quick_actions(
                Reply(self.greeting_word(folded) + GREETING_TEXT, "greeting", buttons=(Button("使い方", "使い方"),)),
                asker, STAFF_NOTE)
        if intents.is_thanks(folded):
            return Reply(THANKS_TEXT, "thanks")
        if intents.is_help(folded):
            return self.with_quick_actions(Reply(HELP_TEXT, "help"), asker, STAFF_HELP)
        if self.lookups is not None:
            request = self.lookups.wants(text, asker, history)
            if request is not None:
                return self.lookups.answer(request, asker)
        topic = next((r for r in history if r.topic), None)
        if topic is not None and intents.is_follow_up(folded):
            reply = self.follow_up(text, topic)
            if reply is not None:
                return reply
        return self.by_confidence(self.searcher.search(text, k=5))

    def quick_actions(self, asker: Asker) -> tuple[Button, ...]:
        """The lookup buttons for signed-in staff (none for anyone else, or without records)."""
        return quick_buttons() if self.lookups is not None and asker.role == "staff" else ()

    def with_quick_actions(self, reply: Reply, asker: Asker, note: str) -> Reply:
        buttons = self.quick_actions(asker)
        if not buttons:
            return reply
        text = reply.text + note.format(name=asker.display_name or "職員")
        return replace(reply, text=text, buttons=reply.buttons + buttons)

    @staticmethod
    def greeting_word(folded: str) -> str:
        if folded.startswith("おはよう"):
            return "おはようございます。"
        if folded.startswith(("こんばんは", "こんばんわ")):
            return "こんばんは。"
        return "こんにちは。"

    def by_confidence(self, results) -> Reply:
        if results and results[0].confidence >= self.answer_at:
            return self.answer(results[0])
        best = round(max((r.confidence for r in results), default=0.0), 4)
        choices = self.distinct([r for r in results if r.confidence >= self.choices_at])[:3]
        if choices:
            return Reply(
                CHOICES_TEXT, "choices",
                buttons=tuple(Button(r.title, r.title) for r in choices),
                actions=(ESCALATION,), confidence=best, choices=tuple(r.slug for r in choices),
            )
        return Reply(UNKNOWN_TEXT, "unknown", actions=(ESCALATION,), confidence=best)

    @staticmethod
    def distinct(results):
        seen, out = set(), []
        for r in results:
            if r.slug not in seen:
                seen.add(r.slug)
                out.append(r)
        return out

    def follow_up(self, text: str, topic: Reply) -> Reply | None:
        """Read a short follow-up against the last topic: search it together with that article's title.

        The last article wins when it matches at all, since that is what 「それ」 points to; another
        article is only taken if it is a confident answer on its own.
        """
        title = topic.sources[0].title if topic.sources else ""
        results = self.searcher.search(f"{text} {title}", k=5)
        for r in results:
            if r.slug == topic.topic and r.confidence >= self.choices_at:
                return self.answer(r)
        if results and results[0].confidence >= self.answer_at:
            return self.answer(results[0])
        return None

    def chosen_article(self, slug: str, question: str | None) -> Reply:
        """A 「もしかして」 button was pressed: answer from that article, with the passage that best fits
        the question that led to the choices (or the article's opening when nothing fits)."""
        if question:
            for r in self.searcher.search(question, k=10):
                if r.slug == slug:
                    return self.answer(r, confidence=1.0)
        article = self.searcher.article(slug)
        if article is None:
            return Reply(NO_ARTICLE_TEXT, "unknown", actions=(ESCALATION,), confidence=0.0)
        lead = article.body.split("\n## ", 1)[0]
        return self.compose(article.slug, article.title, article.updated, article.event_date, lead, 1.0)

    def answer(self, result, confidence: float | None = None) -> Reply:
        return self.compose(result.slug, result.title, result.updated, result.event_date, result.passage,
                            result.confidence if confidence is None else confidence)

    def compose(self, slug, title, updated, event_date, passage, confidence) -> Reply:
        """The answer text: event status first (it matters most), the passage, then the article's date."""
        body, cut = trim(plain(passage), self.passage_chars)
        parts = []
        event = self.event_status(event_date)
        if event:
            parts.append(event)
        parts.append(body + ("\n" + CUT_NOTE if cut else ""))
        parts.append(f"（{japanese_date(updated)}更新の記事より）")
        return Reply("\n\n".join(parts), "answer", sources=(Source.of(slug, title, updated),),
                     confidence=round(float(confidence), 4), topic=slug)

    def event_status(self, event_date: str | None) -> str | None:
        """Say plainly whether the event in an answer is past, today or still ahead."""
        state = event_state(event_date, self.today())
        if state is None:
            return None
        day = japanese_date(event_date)
        if state == "past":
            return f"この催しは{day}に開催済みです。"
        if state == "today":
            return f"この催しは本日（{day}）開催です。"
        return f"この催しは{day}に開催予定です。"

    def handoff(self, asker: Asker) -> Reply:
        text = HANDOFF_TEXT + (HANDOFF_MEMBER_NOTE if asker.role == "member" else "")
        return Reply(text, "handoff", actions=(PHONE_ACTION,))
