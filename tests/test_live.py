"""Held requests through the real served stack (gunicorn, waitress in each worker): the widget's
`GET /api/conversations/<id>/messages?after=…&wait=…` and the ticket page's live endpoint.

Each test measures from the moment the news is written, so "at once" means within the watcher's
interval plus a request, never the widget's old 5-second poll.
"""
from __future__ import annotations

import re
import threading
import time

import httpx
import pytest

from tests.desk_support import add_agents, csrf_of, sign_in

UNANSWERABLE = "ぴよぴよほげほげ"


@pytest.fixture(scope="module")
def served(live_server_factory):
    return live_server_factory(prepare=add_agents)


def handed_over(http: httpx.Client) -> tuple[str, dict, int, int]:
    """A web conversation handed to the desk: (id, auth headers, ticket number, last message id)."""
    created = http.post("/api/conversations", json={}).json()
    cid, auth = created["id"], {"Authorization": f"Bearer {created['token']}"}
    assert http.post(f"/api/conversations/{cid}/messages", json={"text": UNANSWERABLE}, headers=auth).status_code == 201
    ticket = http.post(f"/api/conversations/{cid}/handoff", json={}, headers=auth).json()["ticket"]["number"]
    last = http.get(f"/api/conversations/{cid}/messages", headers=auth).json()[-1]["id"]
    return cid, auth, ticket, last


def agent_reply(url: str, number: int, text: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as desk:
        assert sign_in(desk).status_code == 303
        token = csrf_of(desk.get(f"/desk/tickets/{number}").text)
        sent = desk.post(f"/desk/tickets/{number}/messages", data={"text": text, "action": "reply", "csrf_token": token})
        assert sent.status_code == 303, sent.text


class Held(threading.Thread):
    """One GET in its own thread and connection; `.result` is (status, JSON, seconds, finished at)."""

    def __init__(self, url: str, path: str, headers: dict | None = None):
        super().__init__(daemon=True)
        self.url, self.path, self.headers, self.result, self.cookies = url, path, headers or {}, None, None

    def start_with(self, cookies) -> None:
        """Start with a signed-in client's cookies (the agent's session)."""
        self.cookies = cookies
        self.start()

    def run(self):
        with httpx.Client(base_url=self.url, timeout=40, cookies=self.cookies) as http:
            started = time.monotonic()
            response = http.get(self.path, headers=self.headers)
            finished = time.monotonic()
            self.result = (response.status_code, response.json(), finished - started, finished)


def test_a_held_poll_answers_as_soon_as_the_agent_replies(served):
    with httpx.Client(base_url=served, timeout=10) as http:
        cid, auth, number, last = handed_over(http)
    held = Held(served, f"/api/conversations/{cid}/messages?after={last}&wait=20", auth)
    held.start()
    time.sleep(1.0)
    assert held.result is None, "answered before anything happened: the request was not held"
    agent_reply(served, number, "担当の山田です。確認いたします。")
    replied = time.monotonic()
    held.join(15)
    status, messages, seconds, finished = held.result
    assert status == 200
    assert [(m["role"], m["text"], m["author"]) for m in messages] == [
        ("agent", "担当の山田です。確認いたします。", "運営事務局 山田")]
    assert finished - replied < 1.0, f"the reply reached the held poll {finished - replied:.2f} s after it was sent"


def test_a_held_poll_with_nothing_new_answers_an_empty_list_when_its_time_is_up(served):
    with httpx.Client(base_url=served, timeout=10) as http:
        cid, auth, _, last = handed_over(http)
        started = time.monotonic()
        response = http.get(f"/api/conversations/{cid}/messages?after={last}&wait=1", headers=auth)
        assert (response.status_code, response.json()) == (200, [])
        assert 1.0 <= time.monotonic() - started < 3.0
        # Something already newer than `after` is answered at once, held or not.
        started = time.monotonic()
        response = http.get(f"/api/conversations/{cid}/messages?after=0&wait=20", headers=auth)
        assert response.status_code == 200 and response.json()[-1]["id"] == last
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("wait", ["31", "-1", "1.5", "abc", "²", "9" * 30, " 5"])
def test_a_bad_wait_is_a_japanese_400(served, wait):
    with httpx.Client(base_url=served, timeout=10) as http:
        cid, auth = _plain(http)
        response = http.get(f"/api/conversations/{cid}/messages", params={"after": 0, "wait": wait}, headers=auth)
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_parameter",
                                         "message": "URL の「wait」の値が正しくありません。0〜30の整数（秒）を指定してください。"}}


def _plain(http: httpx.Client) -> tuple[str, dict]:
    created = http.post("/api/conversations", json={}).json()
    return created["id"], {"Authorization": f"Bearer {created['token']}"}


def test_a_held_poll_of_someone_elses_conversation_is_the_usual_404_at_once(served):
    with httpx.Client(base_url=served, timeout=10) as http:
        cid, _, _, last = handed_over(http)
        started = time.monotonic()
        response = http.get(f"/api/conversations/{cid}/messages?after={last}&wait=20",
                            headers={"Authorization": "Bearer not-the-token"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "conversation_not_found"
    assert time.monotonic() - started < 2.0


def test_fifty_waiting_widgets_leave_the_chat_threads_free(served):
    """50 held polls on the default server (2 workers × 4 threads): questions are still answered at
    once while every one of the 50 is still waiting."""
    with httpx.Client(base_url=served, timeout=10) as http:
        convs = [handed_over(http) for _ in range(50)]
        cid, auth = _plain(http)
        http.post(f"/api/conversations/{cid}/messages", json={"text": "日医ニュースの送付先"}, headers=auth)
        helds = [Held(served, f"/api/conversations/{c}/messages?after={last}&wait=15", a) for c, a, _, last in convs]
        for held in helds:
            held.start()
        time.sleep(1.5)
        assert all(h.result is None for h in helds)
        took = []
        for _ in range(10):
            started = time.monotonic()
            answer = http.post(f"/api/conversations/{cid}/messages", json={"text": "日医ニュースの送付先を変えたい"},
                               headers=auth)
            took.append(time.monotonic() - started)
            assert answer.status_code == 201 and answer.json()["reply"]["kind"]
        assert all(h.result is None for h in helds), "a held poll was answered early"
    assert max(took) < 2.0, took


def test_past_its_slots_a_process_answers_at_once_instead_of_holding(live_server_factory):
    url = live_server_factory({"LIVE_WAITS": 2}, workers=1)
    with httpx.Client(base_url=url, timeout=10) as http:
        convs = [handed_over(http) for _ in range(3)]
    helds = [Held(url, f"/api/conversations/{c}/messages?after={last}&wait=5", a) for c, a, _, last in convs[:2]]
    for held in helds:
        held.start()
    time.sleep(1.0)
    with httpx.Client(base_url=url, timeout=10) as http:
        cid, auth, _, last = convs[2]
        started = time.monotonic()
        response = http.get(f"/api/conversations/{cid}/messages?after={last}&wait=5", headers=auth)
        assert (response.status_code, response.json()) == (200, [])
        assert time.monotonic() - started < 1.0
    for held in helds:
        held.join(10)
        assert held.result[1] == [] and held.result[2] >= 4.5


# -- the ticket page ----------------------------------------------------------------------------------

LIVE_DATA = re.compile(r'data-live="([^"]+)"\s+data-after="(\d+)" data-event="(\d+)"')


def ticket_page(desk: httpx.Client, number: int) -> tuple[str, int, int]:
    page = desk.get(f"/desk/tickets/{number}")
    assert page.status_code == 200
    live, after, event = LIVE_DATA.search(page.text).groups()
    return live, int(after), int(event)


def test_the_ticket_page_hears_the_users_answer_and_who_else_has_it_open(served):
    with httpx.Client(base_url=served, timeout=10) as http:
        cid, auth, number, _ = handed_over(http)
    with httpx.Client(base_url=served, timeout=40) as yamada, httpx.Client(base_url=served, timeout=10) as sato:
        assert sign_in(yamada).status_code == 303 and sign_in(sato, "sato").status_code == 303
        live, after, event = ticket_page(yamada, number)
        assert live == f"/desk/tickets/{number}/live"
        held = Held(served, f"{live}?after={after}&event={event}&wait=20", {"X-Requested-With": "fetch"})
        held.start_with(yamada.cookies)
        time.sleep(1.0)
        assert held.result is None, "answered before anything happened: the request was not held"
        ticket_page(sato, number)  # 佐藤 opens the ticket too
        with httpx.Client(base_url=served, timeout=10) as http:
            sent = http.post(f"/api/conversations/{cid}/messages", json={"text": "<b>会員番号1234567</b>です"},
                             headers=auth)
            assert sent.status_code == 201
        written = time.monotonic()
        held.join(15)
        status, data, _, finished = held.result
        assert status == 200 and finished - written < 2.0, finished - written
        assert "&lt;b&gt;会員番号12***67&lt;/b&gt;です" in data["items"] and "<b>" not in data["items"], data["items"]
        assert data["viewers"] == ["運営事務局 佐藤"]
        assert data["after"] > after and data["state"] == "new"
        # Asked again with what it has now, nothing new: an empty answer when the time is up.
        again = yamada.get(f"{live}?after={data['after']}&event={data['event']}&wait=1").json()
        assert (again["items"].strip(), again["after"], again["event"]) == ("", data["after"], data["event"])


@pytest.mark.parametrize("query", ["after=x", "event=-1", "wait=31"])
def test_a_bad_live_parameter_is_a_japanese_400(served, query):
    with httpx.Client(base_url=served, timeout=10) as http:
        _, _, number, _ = handed_over(http)
        assert sign_in(http).status_code == 303
        response = http.get(f"/desk/tickets/{number}/live?{query}", headers={"X-Requested-With": "fetch"})
    assert response.status_code == 400  # a console page (not /api): the error page, in Japanese
    assert "の値が正しくありません" in response.text
