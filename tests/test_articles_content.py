"""Content checks for the knowledge-base articles and release notes.

These tests read the Markdown files directly with PyYAML and do not import
any project code, so they guard the shipped content on its own.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ARTICLE_DIR = ROOT / "kb" / "articles"
RELEASE_DIR = ROOT / "release_notes"

ALLOWED_KINDS = {"faq", "guide", "notice"}
ALLOWED_AUDIENCES = {"staff", "member", "all"}
REQUIRED_KEYS = {
    "title": str,
    "kind": str,
    "audience": str,
    "tags": list,
    "questions": list,
    "updated": dt.date,
    "source": str,
}
OPTIONAL_KEYS = {"event_date", "section_questions"}
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
FRONT_MATTER_RE = re.compile(r"\A---\r?\n(.*?)\r?\n---\r?\n(.*)\Z", re.DOTALL)
# [text](target) not preceded by "!" (images are not used); target without scheme.
LINK_RE = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _files() -> list[Path]:
    return sorted(ARTICLE_DIR.glob("*.md")) + sorted(RELEASE_DIR.glob("*.md"))


FILES = _files()
SLUGS = {p.stem for p in FILES}


def _parse(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    m = FRONT_MATTER_RE.match(text)
    assert m, f"{path.name}: missing YAML front matter"
    meta = yaml.safe_load(m.group(1))
    assert isinstance(meta, dict), f"{path.name}: front matter is not a mapping"
    return meta, m.group(2)


def _ids(paths):
    return [f"{p.parent.name}/{p.name}" for p in paths]


def test_there_are_files():
    assert ARTICLE_DIR.is_dir() and RELEASE_DIR.is_dir()
    assert list(ARTICLE_DIR.glob("*.md")), "no articles found"
    assert list(RELEASE_DIR.glob("*.md")), "no release notes found"


def test_slugs_are_unique_across_directories():
    stems = [p.stem for p in FILES]
    assert len(stems) == len(set(stems))


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_file_name_is_lowercase_slug(path: Path):
    assert path.suffix == ".md"
    assert SLUG_RE.match(path.stem), f"{path.name} is not a lowercase slug"


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_front_matter_keys_and_types(path: Path):
    meta, _ = _parse(path)
    missing = set(REQUIRED_KEYS) - set(meta)
    assert not missing, f"{path.name}: missing keys {sorted(missing)}"
    unknown = set(meta) - set(REQUIRED_KEYS) - OPTIONAL_KEYS
    assert not unknown, f"{path.name}: unknown keys {sorted(unknown)}"
    for key, typ in REQUIRED_KEYS.items():
        value = meta[key]
        if typ is dt.date:
            # a datetime is also a date subclass; require a plain date
            assert type(value) is dt.date, f"{path.name}: {key} must be a YYYY-MM-DD date"
        else:
            assert isinstance(value, typ), f"{path.name}: {key} must be {typ.__name__}"
    assert meta["title"].strip()
    assert meta["source"].strip()
    assert meta["tags"] and all(isinstance(t, str) and t.strip() for t in meta["tags"])
    questions = meta["questions"]
    assert all(isinstance(q, str) and q.strip() for q in questions)
    assert 6 <= len(questions) <= 12, f"{path.name}: expected 6-12 questions"
    assert len(set(questions)) == len(questions), f"{path.name}: duplicate questions"


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_kind_and_audience_allowed(path: Path):
    meta, _ = _parse(path)
    assert meta["kind"] in ALLOWED_KINDS
    assert meta["audience"] in ALLOWED_AUDIENCES


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_event_date_only_on_notices(path: Path):
    meta, _ = _parse(path)
    if "event_date" in meta:
        assert meta["kind"] == "notice", f"{path.name}: event_date on a non-notice"
        assert type(meta["event_date"]) is dt.date


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_body_has_sections(path: Path):
    _, body = _parse(path)
    assert re.search(r"^## \S", body, re.MULTILINE), f"{path.name}: no '## ' section"


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_relative_links_resolve(path: Path):
    _, body = _parse(path)
    for target in LINK_RE.findall(body):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # absolute URL, mailto: or in-page anchor
        slug = target.split("#", 1)[0]
        assert slug in SLUGS, f"{path.name}: link target {target!r} is not a known slug"


def test_contact_desk_has_phone_number():
    _, body = _parse(ARTICLE_DIR / "contact-desk.md")
    assert "0120-110-030" in body


def test_member_count_has_number():
    _, body = _parse(ARTICLE_DIR / "member-count.md")
    assert "178,559" in body


def test_event_dates_of_known_events():
    liaison, _ = _parse(ARTICLE_DIR / "liaison-council-2026.md")
    training, _ = _parse(ARTICLE_DIR / "family-doctor-report-approval.md")
    assert liaison["event_date"] == dt.date(2026, 3, 16)
    assert training["event_date"] == dt.date(2026, 1, 27)
