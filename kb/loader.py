"""Read knowledge-base sources into `Document` values.

Two kinds of source are accepted: Markdown articles with YAML front matter (the
shipped knowledge base: `kb/articles/`, `release_notes/`) and JSON-lines corpora
(`{"id","title","body"}` or `{"id","question","answer"}` per line), so that an
outside FAQ collection is indexed and measured exactly like our own articles. A Markdown
article must say when it was `updated`; an FAQ line may carry no date (`updated` None, and the
answer then mentions none).

An article's `questions` are the ways people ask the whole article. `section_questions` maps a
`##` heading to the ways people ask *that section*: a question close to one of them is answered
with that section, and the confidence counts their words as the section's own (kb.search). Every
heading named there must exist in the body, so a renamed heading cannot silently drop them.

The loader only parses. It never touches the index, so a broken file is a
value (`BrokenArticle`) the caller can report while indexing the rest.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

KINDS = ("faq", "guide", "notice")
AUDIENCES = ("staff", "member", "all")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.S)
#: A Markdown file in a folder of this name is a release note (as for the Telegram announcements):
#: a question about what is new is answered from the newest one (kb.search).
RELEASE_NOTES_FOLDER = "release_notes"
SECTION_RE = re.compile(r"^##[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


class BrokenArticle(Exception):
    """A source file that cannot be indexed; `reason` is Japanese, for the person fixing it."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class Section:
    heading: str | None
    body: str
    questions: tuple[str, ...] = ()  # the ways people ask this section (front matter `section_questions`)


@dataclass(frozen=True)
class Document:
    slug: str
    title: str
    kind: str = "faq"
    audience: str = "all"
    tags: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    updated: str | None = None
    event_date: str | None = None
    source: str | None = None
    body: str = ""
    sections: tuple[Section, ...] = field(default=())
    release: bool = False  # a release note (a file of RELEASE_NOTES_FOLDER)

    @property
    def all_questions(self) -> tuple[str, ...]:
        """The article's example questions, then its sections': every way the article is asked."""
        return self.questions + tuple(q for s in self.sections for q in s.questions)


def split_sections(body: str) -> tuple[Section, ...]:
    """Cut a Markdown body at its `##` headings; text before the first heading is an untitled section.

    A long article is answered with its best section, so each section is kept whole.
    """
    sections = []
    matches = list(SECTION_RE.finditer(body))
    lead = body[: matches[0].start()] if matches else body
    if lead.strip():
        sections.append(Section(None, lead.strip()))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        text = body[m.end():end].strip()
        if text:
            sections.append(Section(m.group(1).strip(), text))
    return tuple(sections)


def _with_section_questions(sections: tuple[Section, ...], value, path) -> tuple[Section, ...]:
    """Attach front matter `section_questions` ({heading: [question, ...]}) to the sections they name."""
    if value is None:
        return sections
    if not isinstance(value, dict):
        raise BrokenArticle(path, "section_questions は「見出し: [質問, ...]」の形で書いてください")
    by_heading = {}
    for heading, questions in value.items():
        by_heading[str(heading).strip()] = _as_strings(questions, path, f"section_questions の「{heading}」")
    headings = {s.heading for s in sections}
    for heading in by_heading:
        if heading not in headings:
            raise BrokenArticle(path, f"section_questions の見出し「{heading}」が本文の ## 見出しにありません")
    return tuple(Section(s.heading, s.body, by_heading.get(s.heading, ())) for s in sections)


def _as_date(value, path, key) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise BrokenArticle(path, f"{key} は YYYY-MM-DD 形式の日付で書いてください（値: {value!r}）")


def _as_strings(value, path, key) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise BrokenArticle(path, f"{key} は文字列のリストで書いてください")
    return tuple(str(v).strip() for v in value if str(v).strip())


def parse_article(path: Path, raw: bytes) -> Document:
    """Parse one Markdown article; raise BrokenArticle with a reason a writer can act on."""
    slug = path.stem
    if not SLUG_RE.fullmatch(slug):
        raise BrokenArticle(path, "ファイル名は半角英小文字・数字・ハイフンのスラッグにしてください")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BrokenArticle(path, f"UTF-8 ではありません（{e.start} バイト目）。UTF-8 で保存し直してください")
    if not text.strip():
        raise BrokenArticle(path, "ファイルが空です")
    m = FRONT_MATTER_RE.match(text)
    if not m:
        raise BrokenArticle(path, "先頭に --- で囲んだフロントマターがありません")
    try:
        # libyaml's loader: the pure-Python one took a fifth of a full build.
        meta = yaml.load(m.group(1), Loader=yaml.CSafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"（{mark.line + 2} 行目付近）" if mark else ""
        raise BrokenArticle(path, f"フロントマターの YAML が読めません{where}")
    if not isinstance(meta, dict):
        raise BrokenArticle(path, "フロントマターは「キー: 値」の形で書いてください")
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise BrokenArticle(path, "title（タイトル）がありません")
    kind = meta.get("kind", "faq")
    if kind not in KINDS:
        raise BrokenArticle(path, f"kind は {' / '.join(KINDS)} のいずれかにしてください（値: {kind!r}）")
    audience = meta.get("audience", "all")
    if audience not in AUDIENCES:
        raise BrokenArticle(path, f"audience は {' / '.join(AUDIENCES)} のいずれかにしてください（値: {audience!r}）")
    body = m.group(2).strip()
    if not body:
        raise BrokenArticle(path, "本文がありません")
    if meta.get("updated") in (None, ""):
        # Every answer from an article says when it was last checked; an article without
        # the date would be answered with none (or not at all), so it is refused here.
        raise BrokenArticle(path, "updated（最終更新日）がありません。YYYY-MM-DD 形式で書いてください")
    source = meta.get("source")
    return Document(
        slug=slug,
        title=title.strip(),
        kind=kind,
        audience=audience,
        tags=_as_strings(meta.get("tags"), path, "tags"),
        questions=_as_strings(meta.get("questions"), path, "questions"),
        updated=_as_date(meta.get("updated"), path, "updated"),
        event_date=_as_date(meta.get("event_date"), path, "event_date"),
        source=str(source).strip() if source else None,
        body=body,
        sections=_with_section_questions(split_sections(body), meta.get("section_questions"), path),
        release=path.parent.name == RELEASE_NOTES_FOLDER,
    )


def parse_corpus_line(path: Path, lineno: int, line: str) -> Document:
    """One line of a JSON-lines FAQ corpus → a Document whose slug is the line's id."""
    where = f"{path}:{lineno}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise BrokenArticle(where, f"JSON として読めません（{e.msg}）")
    if not isinstance(row, dict) or "id" not in row:
        raise BrokenArticle(where, "id がありません")
    # The id becomes the article's address (/kb/<id>), so it obeys the rule of file-name slugs:
    # no `../../etc/passwd`, no `//evil.example`.
    if not isinstance(row["id"], (str, int)) or isinstance(row["id"], bool) or not SLUG_RE.fullmatch(str(row["id"])):
        raise BrokenArticle(where, "id は半角英小文字・数字・ハイフンにしてください（先頭は英小文字か数字）")
    title = row.get("title") or row.get("question")
    body = row.get("body") or row.get("answer") or ""
    if not isinstance(title, str) or not title.strip():
        raise BrokenArticle(where, "title または question がありません")
    if not isinstance(body, str):
        raise BrokenArticle(where, "body / answer は文字列にしてください")
    body = body.strip() or title.strip()
    return Document(
        slug=str(row["id"]),
        title=title.strip(),
        kind=row.get("kind") if row.get("kind") in KINDS else "faq",
        updated=_as_date(row.get("updated"), where, "updated"),
        body=body,
        sections=(Section(None, body),),
    )


def iter_corpus(path: Path):
    """Yield Document or BrokenArticle for each non-blank line of a JSON-lines corpus."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                yield BrokenArticle(f"{path}:{lineno}", "UTF-8 ではありません")
                continue
            if not line.strip():
                continue
            try:
                yield parse_corpus_line(path, lineno, line)
            except BrokenArticle as e:
                yield e
