"""Knowledge-base pages: /kb/<slug> (one article) and /kb?q= (search, or the list of all articles).

Article Markdown is rendered with `markdown` and then cleaned by nh3 with a short allow-list, so
neither an article file nor a query can put script on the page; relative links between articles
(`[x](slug)`) are rewritten to /kb/slug on the way through.
"""
from __future__ import annotations

import re

import markdown as md
import nh3
from flask import Blueprint, abort, current_app, make_response, render_template, request
from markupsafe import Markup

from bot.conversation.text import EVENT_LABELS, event_state, japanese_date, plain, trim
from helpdesk.errors import by_code

bp = Blueprint("pages", __name__)

ALLOWED_TAGS = {
    "p", "br", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "code", "pre",
    "blockquote", "a", "table", "thead", "tbody", "tr", "th", "td", "hr",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto", "tel"}
ARTICLE_LINK = re.compile(r"(?:\./)?([a-z0-9][a-z0-9-]*)(?:\.md)?(#[A-Za-z0-9_-]*)?")

# No inline script or style anywhere on these pages, so the policy can be strict.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'self'")

KINDS = {"faq": "よくある質問", "guide": "操作ガイド", "notice": "お知らせ"}
AUDIENCES = {"all": "どなたでも", "staff": "医師会事務局の方", "member": "会員の先生方", "desk": "運営事務局"}


def _rewrite_link(tag: str, attr: str, value: str) -> str | None:
    if tag == "a" and attr == "href":
        if value.lstrip().replace("\\", "/").startswith("//"):
            return None  # scheme-relative (//evil.example/phish): another site, whatever nh3's scheme list says
        m = ARTICLE_LINK.fullmatch(value)
        if m:
            return f"/kb/{m.group(1)}{m.group(2) or ''}"
    return value


def render_markdown(text: str) -> Markup:
    """Markdown → HTML that is safe to insert as is (nh3 removes everything not on the allow-list)."""
    html = md.markdown(text, extensions=["tables", "sane_lists"], output_format="html")
    clean = nh3.clean(
        html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
        attribute_filter=_rewrite_link, link_rel="noopener noreferrer", strip_comments=True,
    )
    return Markup(clean)


def page_response(html: str, status: int = 200):
    response = make_response(html, status)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


def _services():
    return current_app.extensions["helpdesk"]


@bp.get("/kb/<slug>")
def article(slug: str):
    core = _services().core()
    found = core.searcher.article(slug)
    if found is None:
        abort(404)
    state = event_state(found.event_date, core.today())
    html = render_template(
        "article.html", article=found, body=render_markdown(found.body),
        kind=KINDS.get(found.kind, found.kind), audience=AUDIENCES.get(found.audience, found.audience),
        updated=japanese_date(found.updated) if found.updated else None,
        event=japanese_date(found.event_date) if found.event_date else None,
        event_status=EVENT_LABELS.get(state), event_note=core.event_status(found.event_date),
    )
    return page_response(html)


@bp.get("/kb")
def search():
    q = request.args.get("q", "").strip()
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    core = _services().core()
    error, results, articles = None, [], []
    if len(q) > limit:
        error = by_code("query_too_long", limit=limit).message
    elif q:
        results = [
            {"slug": r.slug, "title": r.title, "kind": KINDS.get(r.kind, r.kind),
             "updated": japanese_date(r.updated) if r.updated else None,
             "excerpt": trim(plain(r.passage), 140)[0]}
            for r in core.searcher.search(q, k=10)
            if r.confidence >= core.choices_at  # the chat's own cut-off for noise
        ]
    else:
        articles = [
            {"slug": a.slug, "title": a.title, "kind": KINDS.get(a.kind, a.kind),
             "updated": japanese_date(a.updated) if a.updated else None}
            for a in core.searcher.articles()
        ]
    html = render_template("kb_search.html", q=q, results=results, articles=articles, error=error)
    return page_response(html)
