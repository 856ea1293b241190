"""Headers and pages an attacker can steer: the /login `next` target, the demo page's script URL and
the Host header, cache and Content-Security-Policy headers on every HTML page."""
from __future__ import annotations

import re

import pytest

from handlers.web.app import create_app
from tests.staff import PASSWORD, add_records_and_staff


@pytest.fixture
def make_app(instance, demo_db):
    add_records_and_staff(instance, demo_db)
    apps = []

    def make(**config):
        apps.append(create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True, **config}))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["helpdesk"].close()


def form_token(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)


@pytest.mark.parametrize("target", ["/\r\nX-Injected: 1", "/kb\nSet-Cookie: x=1", "/\x00", "/kb\x7f", "/\tkb"])
def test_login_with_a_control_character_in_next_goes_home(make_app, target):
    client = make_app().test_client()
    r = client.post("/login", data={"csrf_token": form_token(client), "login_id": "chiyoda", "password": PASSWORD,
                                    "next": target})
    assert (r.status_code, r.headers["Location"]) == (303, "/")
    assert "X-Injected" not in r.headers and client.get("/api/session").get_json()["signed_in"] is True


# -- the demo page and the headers of every HTML page ---------------------------------------------------------


def script_srcs(html: str) -> list[str]:
    return re.findall(r'<script[^>]* src="([^"]+)"', html)


def test_the_demo_page_never_takes_its_script_url_from_the_host_header(make_app):
    client = make_app().test_client()
    for host in ("evil.example", "evil.example:8000", "127.0.0.1:8000@evil.example"):
        page = client.get("/", headers={"Host": host})
        assert page.status_code == 200 and "evil.example" not in page.get_data(as_text=True)
    html = client.get("/", headers={"Host": "evil.example"}).get_data(as_text=True)
    assert script_srcs(html) == ["http://127.0.0.1:8000/widget.js"]  # the configured HOST and PORT
    assert '&lt;script src="http://127.0.0.1:8000/widget.js" defer&gt;' in html  # the snippet to copy


def test_the_demo_page_uses_public_url_and_allows_only_it(make_app):
    client = make_app(PUBLIC_URL="https://helpdesk.example-med.or.jp/").test_client()
    page = client.get("/", headers={"Host": "evil.example"})
    assert script_srcs(page.get_data(as_text=True)) == ["https://helpdesk.example-med.or.jp/widget.js"]
    csp = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self' https://helpdesk.example-med.or.jp"
    assert csp["frame-src"] == "'self' https://helpdesk.example-med.or.jp"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'" and "evil" not in str(csp)


HTML_PAGES = ["/", "/login", "/logout", "/kb", "/kb?q=マスタ", "/kb/no-such-article", "/widget/frame", "/no-such-page"]


def test_every_html_page_has_a_policy_and_stays_out_of_shared_caches(make_app):
    client = make_app().test_client()
    slug = re.search(r'href="/kb/([a-z0-9-]+)"', client.get("/kb").get_data(as_text=True)).group(1)
    for path in [*HTML_PAGES, f"/kb/{slug}"]:
        r = client.get(path)
        assert r.mimetype == "text/html", path
        csp = dict(part.strip().split(" ", 1) for part in r.headers["Content-Security-Policy"].split(";"))
        assert "'unsafe-inline'" not in csp["script-src"] and csp["object-src"] == "'none'", path
        assert csp["default-src"] == "'self'" and "frame-ancestors" in csp, path
        cache = r.headers["Cache-Control"]
        assert "no-cache" in cache or "no-store" in cache, path
        assert "public" not in cache and "Cookie" in r.headers.get("Vary", ""), path
    frame = client.get("/widget/frame").headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in frame  # the frame's own embedding rule is kept
