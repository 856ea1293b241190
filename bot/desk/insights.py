"""What the desk learns from the conversations: articles to write, deflection, feedback, ticket volume.

Read-only queries over the help desk database, for the console's insight pages. Questions are read
in their redacted form (the unanswered log keeps it; a question that got 「役に立たなかった」 is read
from `messages.redacted`) and masked again as they are read, as the desk's transcript is
(bot/privacy/redaction.py), so that a row written before redaction existed shows no member number or name
either.

A look-up is not a missing article: a message that names a record (a member number, a doctor's name
with 先生/さん, an institution) asked for that record, and one from a secretariat or a linked doctor
that is only a name (「かわかみなおき」, typed as the answer to a lookup prompt that was no longer
pending) asked for a person. Both are left out of "articles to write", so no name reaches a draft;
a staff question phrased as a bare short noun phrase is left out with them, on the side of privacy.

"Articles to write" groups questions that the knowledge base could not answer, or whose answer was
marked not helpful, by similarity (rapidfuzz on the NFKC-folded text): each group is one missing
article, and its questions become the `questions:` of a draft in the form kb/loader.py reads.
"""
from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta

import yaml
from rapidfuzz import fuzz, process

from bot.lookups.requests import parse
from bot.privacy.redaction import redact

SIMILAR = 60  # rapidfuzz score (0–100) above which two questions are taken to ask the same thing
MAX_QUESTIONS = 2000  # the most recent questions considered, so the page stays fast on a busy desk


@dataclass
class Group:
    """Questions that ask the same thing; `key` names it in a URL (stable while its first question is)."""

    questions: list[str] = field(default_factory=list)
    unanswered: int = 0
    not_helpful: int = 0

    @property
    def key(self) -> str:
        return hashlib.sha256(self.questions[0].encode()).hexdigest()[:12]

    @property
    def size(self) -> int:
        return self.unanswered + self.not_helpful


def fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def group_questions(questions: list[tuple[str, str]], threshold: int = SIMILAR) -> list[Group]:
    """Group (text, source) pairs (source: unanswered | not_helpful) greedily by similarity to each
    group's first question, biggest group first. Repeated questions count, but are listed once."""
    groups: list[Group] = []
    heads: list[str] = []
    for text, source in questions:
        folded = fold(text)
        if not folded:
            continue
        found = process.extractOne(folded, heads, scorer=fuzz.ratio, score_cutoff=threshold) if heads else None
        if found is None:
            groups.append(Group())
            heads.append(folded)
            group = groups[-1]
        else:
            group = groups[found[2]]
        if text not in group.questions:
            group.questions.append(text)
        if source == "unanswered":
            group.unanswered += 1
        else:
            group.not_helpful += 1
    return sorted(groups, key=lambda g: (-g.size, g.questions[0]))


LOOKS_UP = ("staff", "member")  # askers who can look records up, so whose bare name is a look-up


def is_look_up(text: str, asker_role: str) -> bool:
    """Whether a (redacted) question asked for a record rather than an article, read as bot/lookups/answer.py
    reads a message: masked letters stand for the name or digits they hide."""
    unmasked = text.replace("＊", "某").replace("*", "0")
    if parse(unmasked).subject:
        return True
    return asker_role in LOOKS_UP and parse(unmasked, pending_topic="member").subject


def draft_article(group: Group, today: date) -> str:
    """A Markdown article with front matter for an editor to finish and put in kb/articles/."""
    front = {"title": "（タイトルを入力してください）", "kind": "faq", "audience": "all", "tags": [],
             "questions": group.questions[:20], "updated": today}
    header = yaml.safe_dump(front, allow_unicode=True, sort_keys=False, default_flow_style=False)
    return (f"---\n{header}---\n\n"
            "（ここに回答を書いてください。MAMIS LETTER など、出典が確かめられる事実だけを書きます。）\n\n"
            "## 詳しい手順\n\n（必要なら、節ごとに `##` の見出しを付けて書きます。）\n")


class Insights:
    """The figures of the insight pages, over the help desk database of `store` (read only)."""

    def __init__(self, store):
        self.store = store

    UNANSWERED_SQL = """
        SELECT text, asker_role FROM unanswered WHERE created_at >= :since ORDER BY id DESC LIMIT :limit
    """
    NOT_HELPFUL_SQL = """
        SELECT COALESCE(q.redacted, q.text), c.asker_role FROM feedback f JOIN messages a ON a.id = f.message_id
        JOIN messages q ON q.id = a.in_reply_to JOIN conversations c ON c.id = q.conversation_id
        WHERE f.helpful = 0 AND f.created_at >= :since ORDER BY f.message_id DESC LIMIT :limit
    """

    def articles_to_write(self, since: str) -> list[Group]:
        """Questions the articles did not answer, masked, look-ups left out, grouped."""
        conn = self.store.conn
        params = {"since": since, "limit": MAX_QUESTIONS}
        rows = [(t, role, "unanswered") for t, role in conn.execute(self.UNANSWERED_SQL, params)]
        rows += [(t, role, "not_helpful") for t, role in conn.execute(self.NOT_HELPFUL_SQL, params)]
        masked = [(redact(t), role, source) for t, role, source in rows]
        return group_questions([(t, source) for t, role, source in masked if not is_look_up(t, role)])

    ASKED_SQL = """
        SELECT count(DISTINCT conversation_id) FROM messages WHERE role = 'user' AND created_at >= :since
    """
    ESCALATED_SQL = "SELECT count(DISTINCT conversation_id) FROM tickets WHERE created_at >= :since"

    def deflection(self, since: str) -> dict:
        """Conversations with a question, those that became a ticket, and the share solved without one."""
        conn = self.store.conn
        asked = conn.execute(self.ASKED_SQL, {"since": since}).fetchone()[0]
        escalated = conn.execute(self.ESCALATED_SQL, {"since": since}).fetchone()[0]
        rate = None if asked == 0 else round(1 - min(escalated, asked) / asked, 4)
        return {"conversations": asked, "escalated": escalated, "deflection_rate": rate}

    FEEDBACK_SQL = """
        SELECT json_extract(a.reply, '$.topic') AS slug, sum(f.helpful) AS helpful,
               sum(1 - f.helpful) AS not_helpful
        FROM feedback f JOIN messages a ON a.id = f.message_id
        WHERE f.created_at >= :since AND json_extract(a.reply, '$.topic') IS NOT NULL
        GROUP BY slug ORDER BY not_helpful DESC, helpful DESC, slug
    """

    def feedback_per_article(self, since: str) -> list[dict]:
        return [dict(r) for r in self.store.conn.execute(self.FEEDBACK_SQL, {"since": since})]

    PER_DAY_SQL = """
        SELECT substr(created_at, 1, 10) AS day, count(*) FROM tickets WHERE created_at >= :since GROUP BY day
    """
    BY_CHANNEL_SQL = """
        SELECT channel, count(*) FROM tickets WHERE created_at >= :since GROUP BY channel ORDER BY count(*) DESC
    """

    def tickets_per_day(self, first: date, last: date) -> list[tuple[str, int]]:
        """Every day from `first` to `last`, with zero on days without tickets (a chart needs them all)."""
        counts = dict(self.store.conn.execute(self.PER_DAY_SQL, {"since": first.isoformat()}))
        days = (last - first).days + 1
        return [((first + timedelta(days=i)).isoformat(), counts.get((first + timedelta(days=i)).isoformat(), 0))
                for i in range(days)]

    def tickets_by_channel(self, since: str) -> list[tuple[str, int]]:
        return [tuple(r) for r in self.store.conn.execute(self.BY_CHANNEL_SQL, {"since": since})]

    RESPONSE_SQL = """
        SELECT avg((julianday(first_response_at) - julianday(created_at)) * 24 * 60),
               avg((julianday(resolved_at) - julianday(created_at)) * 24 * 60)
        FROM tickets WHERE created_at >= :since
    """

    def response_minutes(self, since: str) -> tuple[float | None, float | None]:
        """Average minutes to the first response and to resolution (tickets that have them)."""
        first, resolved = self.store.conn.execute(self.RESPONSE_SQL, {"since": since}).fetchone()
        return (None if first is None else round(first, 1)), (None if resolved is None else round(resolved, 1))

