"""Answers from the knowledge base: judged by the search's confidence, composed as plain text.

The search (kb.search.Searcher) ranks and gives one confidence per result; this module only reads it
against one threshold (`answer_at`, the search's CONFIDENCE_THRESHOLD) and its half (`choices_at`):
an answer, 「もしかして」 choices, or "not found" with the desk. It never ranks.

An answer says each thing once: the event's status first (it matters most), then the passage. The
article's date travels in its Source, which every channel shows beside the link, so the text does not
repeat it; an article without a date says nothing about one.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Callable

from bot.conversation import intents
from bot.conversation.actions import OfferEscalation
from bot.conversation.buttons import ARTICLE_PAYLOAD, BUTTON_ID_BYTES, CHOICE_BUTTON, Button
from bot.conversation.choices import ArticleChoice
from bot.desk.hours import BusinessHours
from bot.model import Asker, Reply, Source
from bot.conversation.phrases import (
    CHOICES_TEXT, CUT_NOTE, NEXT_STEP_CHOICES, NEXT_STEP_DESK, NEXT_STEP_REPHRASE, NEXT_STEP_TEXT,
    NO_ARTICLE_TEXT, OUT_OF_SCOPE_TEXT, STAFF_AUDIENCE_NOTE, UNKNOWN_TEXT,
)
from bot.conversation.text import event_state, japanese_date, plain, trim

# A passage's closing 「以下は…に基づく説明です。」 announces what follows; alone at the end it dangles.
_DANGLING_LEAD = re.compile(r"(?:^|(?<=[。\n]))以下は[^。\n]*。\s*$")
# An article written for members (audience: member) is preferred to a staff one for askers other than
# staff when it ranks this close; articles for everyone are not, since nothing says they fit better.
MEMBER_ARTICLE_MARGIN = 0.05
STAFF_READERS = ("staff", "desk")


def article_button(slug: str, title: str, index: int) -> Button:
    """A 「もしかして」 button: `kb:<slug>` when it fits in a button id, else the index of the choice.
    The echo is the title without its parenthesised details, short enough to show as what was asked."""
    short = title.split("（", 1)[0].strip()
    button_id = ARTICLE_PAYLOAD + slug
    if len(button_id.encode()) > BUTTON_ID_BYTES:
        button_id = f"{CHOICE_BUTTON}{index}"
    return Button(title, button_id, echo=short if short and short != title else None)


class Answers:
    """`hours` names the desk in the replies that send the user there (bot/desk/hours.py)."""

    def __init__(self, searcher, today: Callable[[], date], *, answer_at: float, choices_at: float,
                 passage_chars: int, hours: BusinessHours = BusinessHours()):
        self.searcher, self.today = searcher, today
        self.answer_at, self.choices_at, self.passage_chars = answer_at, choices_at, passage_chars
        self.desk, self.escalation = hours.contact(), OfferEscalation.of(hours)

    def choices_reply(self, text: str, results, kind: str = "choices", confidence: float | None = None) -> Reply:
        return Reply(text, kind, buttons=tuple(article_button(r.slug, r.title, i) for i, r in enumerate(results)),
                     actions=(self.escalation,), confidence=confidence,
                     choices=tuple(ArticleChoice(r.slug) for r in results))

    def search(self, text: str, asker: Asker) -> Reply:
        return self.by_confidence(self.searcher.search(text, k=5), asker, text)

    def by_confidence(self, results, asker: Asker = Asker(), text: str = "") -> Reply:
        if results and results[0].confidence >= self.answer_at:
            return self.answer(self.for_reader(results, asker), asker)
        best = round(max((r.confidence for r in results), default=0.0), 4)
        if text and intents.is_out_of_scope(intents.fold(text), getattr(results, "out_of_domain", None)):
            return Reply(OUT_OF_SCOPE_TEXT.format(desk=self.desk), "out_of_scope", actions=(self.escalation,),
                         confidence=best)
        choices = distinct([r for r in results if r.confidence >= self.choices_at])[:3]
        if choices:
            return self.choices_reply(CHOICES_TEXT, choices, confidence=best)
        return Reply(UNKNOWN_TEXT.format(desk=self.desk), "unknown", actions=(self.escalation,), confidence=best)

    def for_reader(self, results, asker: Asker):
        """The top result, or a member-facing one ranked close behind a staff article for non-staff."""
        top = results[0]
        if asker.role in STAFF_READERS or top.audience != "staff":
            return top
        for r in results[1:]:
            if (r.audience == "member" and r.confidence >= self.answer_at
                    and top.confidence - r.confidence <= MEMBER_ARTICLE_MARGIN):
                return r
        return top

    def follow_up(self, text: str, topic: Reply, asker: Asker) -> Reply | None:
        """Read a short follow-up against the last topic: search it together with that article's title.

        The last article wins when it matches at all, since that is what 「それ」 points to; another
        article is only taken if it is a confident answer on its own.
        """
        title = topic.sources[0].title if topic.sources else ""
        results = self.searcher.search(f"{text} {title}", k=5)
        for r in results:
            if r.slug == topic.topic and r.confidence >= self.choices_at:
                return self.answer(r, asker)
        if results and results[0].confidence >= self.answer_at:
            return self.answer(results[0], asker)
        return None

    def chosen_article(self, slug: str, question: str | None, asker: Asker) -> Reply:
        """A 「もしかして」 button was pressed: answer from that article, with the passage that best fits
        the question that led to the choices (or the article's opening when nothing fits)."""
        if question:
            for r in self.searcher.search(question, k=10):
                if r.slug == slug:
                    return self.answer(r, asker, confidence=1.0)
        article = self.searcher.article(slug)
        if article is None:
            return Reply(NO_ARTICLE_TEXT, "unknown", actions=(self.escalation,), confidence=0.0)
        lead = article.body.split("\n## ", 1)[0]
        return self.compose(article, lead, 1.0, asker)

    def answer(self, result, asker: Asker, confidence: float | None = None) -> Reply:
        return self.compose(result, result.passage, result.confidence if confidence is None else confidence, asker)

    def compose(self, article, passage: str, confidence: float, asker: Asker) -> Reply:
        """The answer text: event status first, the passage, a note when staff wrote it for staff.

        `article` is a search result or an article: anything with slug, title, updated, event_date
        and audience.
        """
        body, cut = trim(plain(passage), self.passage_chars)
        body = _DANGLING_LEAD.sub("", body).rstrip()
        parts = []
        event = self.event_status(article.event_date)
        if event:
            parts.append(event)
        parts.append(body + ("\n" + CUT_NOTE if cut else ""))
        if article.audience == "staff" and asker.role not in STAFF_READERS:
            parts.append(STAFF_AUDIENCE_NOTE)
        return Reply("\n\n".join(parts), "answer", sources=(Source.of(article.slug, article.title, article.updated),),
                     confidence=round(float(confidence), 4), topic=article.slug)

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

    def next_step(self, question: str | None, answered_slug: str | None) -> Reply:
        """After 「役に立たなかった」: other articles the question might mean, rephrasing, the desk."""
        others = []
        if question:
            found = [r for r in self.searcher.search(question, k=6)
                     if r.slug != answered_slug and r.confidence >= self.choices_at]
            others = distinct(found)[:3]
        lines = [NEXT_STEP_TEXT, NEXT_STEP_CHOICES if others else NEXT_STEP_REPHRASE,
                 NEXT_STEP_DESK.format(desk=self.desk)]
        if others:
            lines.insert(2, "（" + NEXT_STEP_REPHRASE + "）")
        return self.choices_reply("\n".join(lines), others, kind="next_step")


def distinct(results):
    seen, out = set(), []
    for r in results:
        if r.slug not in seen:
            seen.add(r.slug)
            out.append(r)
    return out
