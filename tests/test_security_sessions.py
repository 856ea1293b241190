"""Signing out ends the session on the server: a copy of the cookie taken while signed in is worthless
after POST /logout, DELETE /api/session, `helpdesk staff signout|passwd|remove` or idleness. Checked
against a real `helpdesk serve` with httpx, holding the copied cookie in a second client."""
from __future__ import annotations

import re
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime, timedelta

import httpx
import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from handlers.web.app import create_app
from tests.conftest import ROOT, build_instance
from tests.staff import PASSWORD, add_records_and_staff

COOKIE = "mamis_helpdesk_session"
SIGN_IN_REQUIRED = "sign_in_required"


@pytest.fixture(scope="module")
def served(live_server_factory, demo_db):
    """(base URL, instance) of a real server with demo records and the test staff accounts."""
    kept = {}

    def prepare(instance):
        add_records_and_staff(instance, demo_db)
        kept["instance"] = instance

    # Many sign-ins from one address within a minute: the limits are not what is tested here.
    url = live_server_factory({"SIGN_IN_RATE_LIMIT": "1000 per minute", "SIGN_IN_ID_RATE_LIMIT": "1000 per minute"},
                              prepare=prepare)
    return url, kept["instance"]


def csrf(http: httpx.Client) -> dict:
    return {"X-CSRFToken": http.get("/api/session").json()["csrf_token"]}


@contextmanager
def signed_in_client(url: str, login_id: str):
    with httpx.Client(base_url=url, timeout=15) as http:
        r = http.post("/api/session", json={"login_id": login_id, "password": PASSWORD}, headers=csrf(http))
        assert r.status_code == 200 and r.json()["signed_in"] is True
        yield http


@contextmanager
def copy_of(http: httpx.Client, url: str):
    """A second client holding nothing but a copy of the first one's session cookie."""
    with httpx.Client(base_url=url, timeout=15) as thief:
        thief.cookies.set(COOKIE, http.cookies[COOKIE])
        yield thief


def ask(http: httpx.Client, conversation: dict, text: str, headers: dict | None = None) -> dict:
    r = http.post(f"/api/conversations/{conversation['id']}/messages", json={"text": text},
                  headers={"Authorization": f"Bearer {conversation['token']}", **(headers or {})})
    assert r.status_code == 201, r.text
    return r.json()["reply"]


def what_the_copy_can_do(thief: httpx.Client, conversation: dict) -> dict:
    """Everything the issue found a copied cookie could still do, as (status, outcome) per action."""
    session = thief.get("/api/session").json()
    history = thief.get(f"/api/conversations/{conversation['id']}/messages",
                        headers={"Authorization": f"Bearer {conversation['token']}"})
    token = {"X-CSRFToken": session["csrf_token"]}
    fresh = thief.post("/api/conversations", headers=token).json()
    lookup = ask(thief, fresh, "会員番号1300001の送付先は", token)
    code = thief.post("/api/link-codes", json={"member_number": "1300001"}, headers=token)
    return {
        "session": session["signed_in"],
        "history": history.status_code if history.status_code != 200 else "read",
        "lookup": lookup["kind"],
        "link_code": code.status_code if code.status_code != 201 else "issued",
    }


def cookie_sent(response: httpx.Response, instance) -> tuple[str, dict]:
    """The session cookie a response sets: the header, and what the signed cookie holds."""
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE + "=")]
    app = Flask(__name__)
    app.secret_key = (instance.path / "secret_key").read_text().strip()
    value = header.split(";", 1)[0].split("=", 1)[1]
    return header, SecureCookieSessionInterface().get_signing_serializer(app).loads(value)


WHILE_SIGNED_IN = {"session": True, "history": "read", "lookup": "lookup", "link_code": "issued"}
WORTHLESS = {"session": False, "history": 404, "lookup": SIGN_IN_REQUIRED, "link_code": 401}


def sign_out_by_api(http: httpx.Client, _instance) -> None:
    assert http.delete("/api/session", headers=csrf(http)).json()["signed_in"] is False


def sign_out_by_form(http: httpx.Client, _instance) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/logout").text).group(1)
    r = http.post("/logout", data={"csrf_token": token})
    assert (r.status_code, r.headers["Location"]) == (303, "/login?signed_out=1")


def staff_command(instance, *args: str, input: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "handlers.server.main", "--instance", str(instance.path), "staff", *args],
                          cwd=ROOT, input=input, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("sign_out", [sign_out_by_api, sign_out_by_form], ids=["DELETE /api/session", "POST /logout"])
def test_a_copied_cookie_is_worthless_after_signing_out(served, sign_out):
    url, instance = served
    with signed_in_client(url, "chiyoda") as http:
        token = csrf(http)
        conversation = http.post("/api/conversations", headers=token).json()
        assert ask(http, conversation, "会員番号1300001の送付先は", token)["kind"] == "lookup"
        with copy_of(http, url) as thief:
            assert what_the_copy_can_do(thief, conversation) == WHILE_SIGNED_IN
            sign_out(http, instance)
            assert what_the_copy_can_do(thief, conversation) == WORTHLESS
            # The dead cookie is not refreshed: what the server sends back names no session and
            # is no longer a cookie that lasts STAFF_SESSION_HOURS.
            r = thief.get("/api/session")
            header, content = cookie_sent(r, instance)
            assert r.json()["signed_in"] is False and "sid" not in content and "Expires=" not in header


def test_staff_signout_ends_every_session_of_one_account_only(served):
    url, instance = served
    with signed_in_client(url, "tokyo") as one, signed_in_client(url, "tokyo") as two, \
            signed_in_client(url, "osaka") as other:
        assert staff_command(instance, "signout", "TOKYO") == "ログアウトさせました: tokyo（終了したセッション: 2）\n"
        assert [c.get("/api/session").json()["signed_in"] for c in (one, two, other)] == [False, False, True]
    with signed_in_client(url, "tokyo") as again:  # signing in again works
        assert again.get("/api/session").json()["staff"]["login_id"] == "tokyo"


def test_staff_passwd_ends_sessions_and_changes_the_password(served):
    url, instance = served
    with signed_in_client(url, "kita") as http, copy_of(http, url) as thief:
        out = staff_command(instance, "passwd", "kita", input="another-password-42\nanother-password-42\n")
        assert "パスワードを変更しました: kita（終了したセッション: 1）" in out
        assert [c.get("/api/session").json()["signed_in"] for c in (http, thief)] == [False, False]
    with httpx.Client(base_url=url, timeout=15) as http:
        old = http.post("/api/session", json={"login_id": "kita", "password": PASSWORD}, headers=csrf(http))
        assert old.status_code == 401
        new = http.post("/api/session", json={"login_id": "kita", "password": "another-password-42"},
                        headers=csrf(http))
        assert new.json()["signed_in"] is True


def test_staff_remove_ends_sessions_and_orphans_the_conversations(served):
    url, instance = served
    with signed_in_client(url, "chuo") as http:
        token = csrf(http)
        conversation = http.post("/api/conversations", headers=token).json()
        ask(http, conversation, "こんにちは", token)
        assert staff_command(instance, "remove", "chuo", "--yes") == "削除しました: chuo（終了したセッション: 1）\n"
        assert http.get("/api/session").json()["signed_in"] is False
    with httpx.Client(base_url=url, timeout=15) as http:
        assert http.post("/api/session", json={"login_id": "chuo", "password": PASSWORD},
                         headers=csrf(http)).status_code == 401
    # Someone added later under the same login id does not inherit the old transcripts.
    staff_command(instance, "add", "chuo", "--name", "後任", "--level", "county", "--code", "13002",
                  "--password", PASSWORD)
    with signed_in_client(url, "chuo") as successor:
        r = successor.get(f"/api/conversations/{conversation['id']}/messages",
                          headers={"Authorization": f"Bearer {conversation['token']}"})
        assert (r.status_code, r.json()["error"]["code"]) == (404, "conversation_not_found")


@pytest.mark.slow  # a Python process per command
def test_staff_commands_name_unknown_accounts_in_japanese(tmp_path):
    instance = build_instance(tmp_path / "inst")
    for args in (("signout", "nobody"), ("passwd", "nobody", "--password", "long-enough-pw"),
                 ("remove", "nobody", "--yes")):
        done = subprocess.run([sys.executable, "-m", "handlers.server.main", "--instance", str(instance.path), "staff", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1
        assert "ログインID「nobody」の職員アカウントはありません。" in done.stderr


class Clock:
    """Apps of one instance at chosen moments (the NOW setting), sharing a signed-in cookie."""

    START = datetime.fromisoformat("2026-11-25T09:00:00+09:00")

    def __init__(self, instance, settings: dict):
        self.instance, self.settings, self.apps = instance, settings, []

    def client_at(self, moment: datetime, cookie: str | None = None):
        app = create_app({"INSTANCE_PATH": str(self.instance.path), "TESTING": True, "NOW": moment.isoformat(),
                          **self.settings})
        self.apps.append(app)
        client = app.test_client()
        if cookie:
            client.set_cookie(COOKIE, cookie)
        return client

    def sign_in(self) -> str:
        first = self.client_at(self.START)
        token = first.get("/api/session").get_json()["csrf_token"]
        assert first.post("/api/session", json={"login_id": "chiyoda", "password": PASSWORD},
                          headers={"X-CSRFToken": token}).status_code == 200
        return first.get_cookie(COOKIE).value

    def signed_in(self, hours: float, cookie: str) -> bool:
        return self.client_at(self.START + timedelta(hours=hours), cookie).get("/api/session").get_json()["signed_in"]

    def close(self) -> None:
        for app in self.apps:
            app.extensions["helpdesk"].close()


def test_an_idle_session_ends_after_the_session_length(tmp_path, demo_db):
    """STAFF_SESSION_HOURS counts from the last request: used within it, a session lives on; left idle
    longer, it is over on the server even if the browser still sends the cookie."""
    instance = build_instance(tmp_path / "inst")
    add_records_and_staff(instance, demo_db)
    clock = Clock(instance, {"STAFF_SESSION_HOURS": 8, "STAFF_SESSION_MAX_HOURS": 48})
    try:
        cookie = clock.sign_in()
        assert clock.signed_in(7, cookie) is True
        # 7 h later it was used, so 14 h after sign-in it is still alive; 8 h after that use it is not.
        assert clock.signed_in(14, cookie) is True
        assert clock.signed_in(22, cookie) is False
        assert clock.signed_in(14 + 1 / 60, cookie) is False  # ended for good, not merely too old
    finally:
        clock.close()


def test_a_busy_session_still_ends_its_longest_life_after_sign_in(tmp_path, demo_db):
    """STAFF_SESSION_MAX_HOURS counts from sign-in: a cookie used every few hours (a stolen one kept
    busy, too) is over once it has passed, and stays over."""
    instance = build_instance(tmp_path / "inst")
    add_records_and_staff(instance, demo_db)
    clock = Clock(instance, {"STAFF_SESSION_HOURS": 8, "STAFF_SESSION_MAX_HOURS": 12})
    try:
        cookie = clock.sign_in()
        assert [clock.signed_in(h, cookie) for h in (4, 8, 11.9, 12, 11.95)] == [True, True, True, False, False]
    finally:
        clock.close()
