"""Article and search pages, the error page, and that no article or query can inject script."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from handlers.web.pages import render_markdown

DANGEROUS_TAGS = {"script", "iframe", "svg", "object", "embed", "style", "img", "base", "meta", "link"}


class ActiveContent(HTMLParser):
    """Collects what a browser would run: dangerous elements, event handlers, script URLs, inline style."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.found: list = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        ours = (tag == "meta" and a.keys() <= {"charset", "name", "content"}) or (
            tag == "link" and a == {"rel": "stylesheet", "href": "/static/site.css"})
        if tag in DANGEROUS_TAGS and not ours:
            self.found.append(tag)
        for name, value in attrs:
            v = (value or "").strip().lower()
            if name.startswith("on") or name == "style" or v.startswith(("javascript:", "data:", "vbscript:")):
                self.found.append((tag, name, value))


def active_content(html: str) -> list:
    return ActiveContent(html).found


def test_article_page(client):
    r = client.get("/kb/delivery-settings")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<html lang="ja">' in html
    assert "<title>日医ニュース・日本医師会雑誌の送付区分設定（送付する/しない・送付先） | MAMIS ヘルプデスク</title>" in html
    assert '<h1 id="article-title">日医ニュース・日本医師会雑誌の送付区分設定（送付する/しない・送付先）</h1>' in html
    assert '<dt>更新日</dt><dd><time datetime="2026-01-15">2026年1月15日</time></dd>' in html
    assert "<dt>出典</dt><dd>MAMIS LETTER 第15号 Topic 01 MAMIS送付区分設定</dd>" in html
    assert '<h2>設定できる送付物</h2>' in html
    # Relative links between articles point at the article pages.
    assert '<a href="/kb/contact-desk" rel="noopener noreferrer">お問い合わせ窓口の一覧</a>' in html
    # Landmarks, skip link, a labelled search field.
    assert '<a class="skip-link" href="#main">本文へスキップ</a>' in html
    assert '<main id="main"' in html and "<header" in html and "<footer" in html
    assert '<label for="site-q">記事を検索</label>' in html and 'id="site-q"' in html
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert active_content(html) == []


def test_event_article_says_it_has_taken_place(client):
    html = client.get("/kb/liaison-council-2026").get_data(as_text=True)
    assert '<dt>開催日</dt><dd><time datetime="2026-03-16">2026年3月16日</time><span class="event-status">（開催済み）</span></dd>' in html
    assert '<p class="notice" role="note">この催しは2026年3月16日に開催済みです。</p>' in html


def test_unknown_article_is_a_japanese_404(client):
    r = client.get("/kb/no-such-article")
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert '<html lang="ja">' in html and "<h1>ページが見つかりません</h1>" in html
    assert client.get("/nothing/here").status_code == 404


def test_search_page(client):
    html = client.get("/kb?q=医療機関マスタの更新").get_data(as_text=True)
    assert "<title>「医療機関マスタの更新」の検索結果 | MAMIS ヘルプデスク</title>" in html
    links = re.findall(r'<h2><a href="(/kb/[a-z0-9-]+)">', html)
    assert links[0] == "/kb/institution-master-updates"
    assert 'value="医療機関マスタの更新"' in html


def test_search_page_without_a_query_lists_every_article(client, searcher):
    html = client.get("/kb").get_data(as_text=True)
    links = re.findall(r'<h2><a href="/kb/([a-z0-9-]+)">', html)
    assert sorted(links) == sorted(a.slug for a in searcher.articles())


def test_search_page_with_nothing_found_points_to_the_desk(client):
    html = client.get("/kb?q=パスワードを忘れた").get_data(as_text=True)
    assert "該当する記事が見つかりませんでした" in html and "0120-110-030" in html


def test_a_malicious_query_is_escaped(client):
    evil = '"><script>alert(1)</script><img src=x onerror=alert(1)>'
    r = client.get("/kb", query_string={"q": evil})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert active_content(html) == []
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert client.get("/kb", query_string={"q": "あ" * 2001}).status_code == 200  # says it is too long


EVIL_ARTICLE = """---
title: "悪意のある記事<script>alert('title')</script>"
kind: faq
audience: all
questions:
  - 悪意のある記事のテスト
updated: 2026-01-15
source: "<img src=x onerror=alert('source')>"
---

本文です。<script>alert('body')</script>

<img src="x" onerror="alert('img')"> <svg onload="alert('svg')"></svg>
<iframe src="https://evil.example"></iframe><style>body{display:none}</style>
<a href="javascript:alert('a')">リンク</a> [md link](javascript:alert('md'))
[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
<p onclick="alert('p')" style="color:red">段落</p>

## 見出し<script>alert('h2')</script>

[関連記事](delivery-settings) と [外部](https://www.med.or.jp/)
"""


def test_no_article_can_inject_script(tmp_path):
    """A hostile article file goes through the real indexer and the real page."""
    from helpdesk.instance import Instance
    from handlers.web.app import create_app
    from kb.indexer import build_index

    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "evil-article.md").write_text(EVIL_ARTICLE, encoding="utf-8")
    instance = Instance.at(tmp_path / "instance")
    report = build_index([articles], instance.kb_index)
    assert (report.indexed, report.broken) == (1, [])
    app = create_app({"INSTANCE_PATH": str(instance.path)})
    try:
        html = app.test_client().get("/kb/evil-article").get_data(as_text=True)
    finally:
        app.extensions["helpdesk"].close()
    assert active_content(html) == []
    assert "<h1 id=\"article-title\">悪意のある記事&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;</h1>" in html
    assert "&lt;img src=x onerror=alert(&#39;source&#39;)&gt;" in html
    assert '<a href="/kb/delivery-settings" rel="noopener noreferrer">関連記事</a>' in html
    assert '<a href="https://www.med.or.jp/" rel="noopener noreferrer">外部</a>' in html
    assert "<p>段落</p>" in html


@pytest.mark.parametrize("markdown, html", [
    ("[x](member-count)", '<p><a href="/kb/member-count" rel="noopener noreferrer">x</a></p>'),
    ("[x](./member-count.md#top)", '<p><a href="/kb/member-count#top" rel="noopener noreferrer">x</a></p>'),
    ("[x](/kb/member-count)", '<p><a href="/kb/member-count" rel="noopener noreferrer">x</a></p>'),
    ("[x](mailto:syogai@po.med.or.jp)", '<p><a href="mailto:syogai@po.med.or.jp" rel="noopener noreferrer">x</a></p>'),
    ("[x](JavaScript:alert(1))", '<p><a rel="noopener noreferrer">x</a></p>'),
    ("| a | b |\n|---|---|\n| 1 | 2 |", "<table>\n<thead>\n<tr>\n<th>a</th>\n<th>b</th>\n</tr>\n</thead>\n"
                                          "<tbody>\n<tr>\n<td>1</td>\n<td>2</td>\n</tr>\n</tbody>\n</table>"),
])
def test_render_markdown(markdown, html):
    assert str(render_markdown(markdown)) == html


# -- the app factory ------------------------------------------------------------------------------------------


def test_settings_precedence_and_persisted_secret(tmp_path):
    from handlers.web.app import create_app

    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.json").write_text('{"MAX_MESSAGE_CHARS": 500, "WIDGET_MAX_AGE": 60}', encoding="utf-8")
    app = create_app({"INSTANCE_PATH": str(instance), "WIDGET_MAX_AGE": 10})
    assert (app.config["MAX_MESSAGE_CHARS"], app.config["WIDGET_MAX_AGE"]) == (500, 10)  # file, then caller
    assert app.config["SUGGEST_MAX_CHARS"] == 200  # declared default
    key = app.config["SECRET_KEY"]
    assert len(key) == 64 and (instance / "secret_key").read_text() == key
    again = create_app({"INSTANCE_PATH": str(instance)})
    assert again.config["SECRET_KEY"] == key
    for a in (app, again):
        a.extensions["helpdesk"].close()


@pytest.mark.parametrize("origins", ["https://ok.example.jp https://bad.example/path", ["https://x.jp\r\nSet-Cookie: a=b"]])
def test_bad_allowed_origins_are_refused(tmp_path, origins):
    from handlers.web.app import BadSetting, create_app

    with pytest.raises(BadSetting):
        create_app({"INSTANCE_PATH": str(tmp_path), "ALLOWED_ORIGINS": origins})


def test_frame_may_be_embedded_by_allowed_origins(tmp_path):
    from handlers.web.app import create_app

    app = create_app({"INSTANCE_PATH": str(tmp_path), "ALLOWED_ORIGINS": "https://a.example.jp, http://localhost:8080"})
    r = app.test_client().get("/widget/frame")
    directives = r.headers["Content-Security-Policy"].split("; ")
    assert "frame-ancestors 'self' https://a.example.jp http://localhost:8080" in directives
    assert "script-src 'self'" in directives  # completed with the strict policy of every page
    app.extensions["helpdesk"].close()
