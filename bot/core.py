"""The conversation core: one message in, one reply out, whatever the channel.

`Core.reply` validates the text, replays a message already answered under the same idempotency key,
otherwise decides a reply and stores question and answer together. `Core.decide` is the decision alone:
intents first (greeting, thanks, help, a request for a person, a chosen 「もしかして」 button), then a
follow-up read against the last topic, then the knowledge-base search judged by its confidence.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Callable, Sequence

from . import intents
from .errors import EmptyMessage, MessageTooLong
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
                 passage_chars: int = 400):
        if answer_at is None:
            from kb.search import CONFIDENCE_THRESHOLD
            answer_at = CONFIDENCE_THRESHOLD
        self.searcher, self.store, self.clock = searcher, store, clock
        # Below half the answer threshold a match is noise (the search's own suggest cut-off, too).
        choices_at = answer_at / 2 if choices_at is None else choices_at
        self.max_chars, self.answer_at, self.choices_at = max_chars, answer_at, choices_at
        self.passage_chars = passage_chars

    # -- conversations -----------------------------------------------------------------------------

    def now(self) -> str:
        return self.clock().astimezone(JST).isoformat(timespec="seconds")

    def today(self) -> date:
        return self.clock().astimezone(JST).date()

    def open_conversation(self, channel: str, asker: Asker) -> NewConversation:
        return self.store.create_conversation(channel, asker.role, self.now())

    def conversation(self, conversation_id: str, token: str | None = None) -> Conversation:
        return self.store.conversation(conversation_id, token)

    def history(self, conversation_id: str, token: str | None = None) -> list[Message]:
        self.store.conversation(conversation_id, token)
        return self.store.messages(conversation_id)

    def feedback(self, message_id: int, helpful: bool, token: str | None = None) -> Message:
        return self.store.set_feedback(message_id, helpful, self.now(), token)

    # -- the one entry point ---------------------------------------------------------------------------

    def reply(self, conversation_id: str, text: str, asker: Asker, channel: str, *,
              idempotency_key: str | None = None) -> Turn:
        """Answer one message and store both sides; a repeated idempotency key replays the first answer."""
        text = self.validate(text)
        self.store.conversation(conversation_id)
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
        question, answer, replayed = self.store.save_turn(
            conversation_id, text, reply, self.now(),
            idempotency_key=idempotency_key, unanswered=unanswered,
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
        folded = intents.fold(text)
        if intents.is_handoff(folded):
            return self.handoff(asker)
        if intents.is_greeting(folded):
            return Reply(self.greeting_word(folded) + GREETING_TEXT, "greeting",
                         buttons=(Button("使い方", "使い方"),))
        if intents.is_thanks(folded):
            return Reply(THANKS_TEXT, "thanks")
        if intents.is_help(folded):
            return Reply(HELP_TEXT, "help")
        topic = next((r for r in history if r.topic), None)
        if topic is not None and intents.is_follow_up(folded):
            reply = self.follow_up(text, topic)
            if reply is not None:
                return reply
        return self.by_confidence(self.searcher.search(text, k=5))

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
