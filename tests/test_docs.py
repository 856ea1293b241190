"""The README stays a quick start and every link between the documents leads somewhere.

The README is the first page anyone reads: it opens with the two commands that work on a fresh machine
and points to docs/ for the design and the measurements. Links are read from the rendered Markdown (so
an example inside a code span or block is not taken for a link) and checked against the files and,
for a `#fragment`, against the headings as GitHub turns them into anchors.
"""
from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import markdown
import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
DOCUMENTS = [README, ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if (tag, name) in {("a", "href"), ("img", "src")} and value:
                self.targets.append(value)


def links(path: Path) -> list[str]:
    """Every href and src of the page as rendered."""
    parser = _Links()
    parser.feed(markdown.markdown(path.read_text(encoding="utf-8"), extensions=["tables", "fenced_code"]))
    return parser.targets


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces as hyphens,
    a repeated one numbered."""
    seen: dict[str, int] = {}
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.group(1)).lower()
        slug = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LMN"
                       or unicodedata.category(c) == "Pc").replace(" ", "-")
        seen[slug] = seen.get(slug, -1) + 1
    return {slug if n == 0 else f"{slug}-{i}" for slug, n in seen.items() for i in range(n + 1)} | set(seen)


def broken(document: Path, root: Path = ROOT) -> list[str]:
    """The relative links of `document` whose file or heading does not exist (or lies outside `root`)."""
    wrong = []
    for target in links(document):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # another site, mailto:, tel:
        path = (document.parent / unquote(parts.path)).resolve() if parts.path else document
        if not path.exists() or not path.is_relative_to(root):
            wrong.append(target)
        elif parts.fragment and path.suffix == ".md" and unquote(parts.fragment) not in anchors(path):
            wrong.append(target)
    return wrong


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(document):
    assert broken(document) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_document_named_in_code_exists(document):
    """`docs/x.md` written as code rather than as a link must still name a page that exists."""
    named = re.findall(r"`((?:docs|bench)/[\w./-]+\.md)", document.read_text(encoding="utf-8"))
    assert [name for name in named if not (ROOT / name).exists()] == []


def test_the_link_check_finds_a_missing_page_and_a_missing_heading(tmp_path):
    """The check itself can fail: a link to a page or a heading that is not there is reported."""
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## Why SudachiPy\n\n```sh\n# not a heading\n```\n", encoding="utf-8")
    page.write_text("[a](other.md#why-sudachipy) [b](other.md#not-a-heading) [c](gone.md) "
                    "`[d](also-gone.md)` [e](https://example.com/x.md) [f](#top)\n\n# Top\n", encoding="utf-8")
    assert broken(page, root=tmp_path) == ["other.md#not-a-heading", "gone.md"]


def test_github_anchors_of_headings_with_code_and_punctuation():
    assert {"why-did-it-answer-that---explain", "quality-measured", "who-may-see-what-recordsaccesspy"} <= (
        anchors(ROOT / "docs" / "articles.md") | anchors(ROOT / "docs" / "search.md") | anchors(ROOT / "docs" / "records.md"))


def test_the_readme_opens_with_the_two_commands():
    """Nothing but the title and one paragraph come before them, and the block holds nothing else."""
    text = README.read_text(encoding="utf-8")
    before, _, rest = text.partition("```sh\n")
    block = rest.partition("```")[0]
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["make run", "make test"]
    assert [line for line in before.splitlines() if line.startswith("#")] == ["# MAMIS ヘルプデスク"]
    assert "`make test-fast`" in rest


def test_the_readme_is_a_quick_start_that_links_every_page_in_docs():
    """Design and measurements live in docs/; the README says where, for every page there."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 130
    linked = {(ROOT / unquote(urlsplit(t).path)).resolve() for t in links(README) if not urlsplit(t).scheme}
    assert set((ROOT / "docs").glob("*.md")) <= linked
    quality = [line for line in text.splitlines() if line.startswith("| set ")]
    assert quality and "answered_right" in quality[0]
