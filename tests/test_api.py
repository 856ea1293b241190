"""The JSON API against a real `helpdesk serve` (gunicorn, 2 workers) on a free port, over httpx."""
from __future__ import annotations

import re
import threading

import httpx
import pytest

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def http(live_server):
    with httpx.Client(base_url=live_server, timeout=10) as client:
        yield client


def open_conversation(http) -> tuple[str, dict]:
    r = http.post("/api/conversations")
    assert r.status_code == 201
    return r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}


def assert_error(r: httpx.Response, status: int, code: str):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"] and sorted(body["error"]) == ["code", "message"]
    assert body["error"]["code"] == code
    assert JAPANESE.search(body["error"]["message"]), body


def test_a_whole_conversation(http):
    r = http.post("/api/conversations", json={})
    assert r.status_code == 201
    created = r.json()
    assert sorted(created) == ["created_at", "id", "token"]
    assert created["created_at"] == "2026-11-25T10:00:00+09:00"
    cid, auth = created["id"], {"Authorization": f"Bearer {created['token']}"}
    assert r.headers["location"] == f"/api/conversations/{cid}/messages"

    r = http.post(f"/api/conversations/{cid}/messages", json={"text": "  日医ニュースの送付先を自宅に変更したい  "},
                  headers=auth)
    assert r.status_code == 201
    body = r.json()
    question, reply = body["message"], body["reply"]
    assert question == {"id": question["id"], "role": "user", "text": "日医ニュースの送付先を自宅に変更したい",
                        "created_at": "2026-11-25T10:00:00+09:00", "idempotency_key": None}
    assert sorted(reply) == ["actions", "buttons", "confidence", "created_at", "feedback", "id", "in_reply_to",
                             "kind", "role", "sources", "table", "text"]
    assert reply["table"] is None
    assert reply["sources"] == [{
        "slug": "delivery-settings", "title": "日医ニュース・日本医師会雑誌の送付区分設定（送付する/しない・送付先）",
        "url": "/kb/delivery-settings", "updated": "2026-01-15",
    }]
    assert (reply["kind"], reply["buttons"], reply["actions"], reply["feedback"]) == ("answer", [], [], None)
    assert reply["in_reply_to"] == question["id"] and reply["confidence"] >= 0.5
    assert "更新の記事より" not in reply["text"]  # the date is said once, by the source

    follow = http.post(f"/api/conversations/{cid}/messages", json={"text": "電話番号は？"}, headers=auth).json()["reply"]
    assert follow["sources"][0]["slug"] == "delivery-settings"

    r = http.post(f"/api/messages/{reply['id']}/feedback", json={"helpful": True}, headers=auth)
    assert (r.status_code, r.json()) == (200, {"id": reply["id"], "feedback": True})

    r = http.get(f"/api/conversations/{cid}/messages", headers=auth)
    assert r.status_code == 200
    history = r.json()
    assert [m["role"] for m in history] == ["user", "bot", "user", "bot"]
    unhelpful_then_next_step(http, follow, auth)
    assert history[0] == question
    assert history[1] == {**reply, "feedback": True}
    assert history[3] == follow

    # The source link is a real page.
    assert http.get(reply["sources"][0]["url"]).status_code == 200


def test_past_event_and_unknown_question_through_the_api(http):
    cid, auth = open_conversation(http)
    event = http.post(f"/api/conversations/{cid}/messages", json={"text": "会員情報担当理事連絡協議会はいつですか"},
                      headers=auth).json()["reply"]
    assert event["text"].startswith("この催しは2026年3月16日に開催済みです。")
    unknown = http.post(f"/api/conversations/{cid}/messages", json={"text": "パスワードを忘れた"},
                        headers=auth).json()["reply"]
    assert unknown["kind"] == "unknown"
    assert unknown["actions"] == [{"type": "offer_escalation", "label": "担当者に問い合わせる", "id": "handoff",
                                   "payload": "担当者と話したい", "desk": "MAMIS運営事務局", "phone": "0120-110-030"}]
    handoff = http.post(f"/api/conversations/{cid}/messages", json={"text": unknown["actions"][0]["payload"]},
                        headers=auth).json()["reply"]
    assert handoff["kind"] == "handoff_offer" and "0120-110-030" in handoff["text"]  # the desk asks first (issue 13)


# -- validation: each code --------------------------------------------------------------------------------


def test_message_validation_errors(http):
    cid, auth = open_conversation(http)
    url = f"/api/conversations/{cid}/messages"
    assert_error(http.post(url, json={"text": ""}, headers=auth), 422, "empty_message")
    assert_error(http.post(url, json={"text": " \n\u3000 "}, headers=auth), 422, "empty_message")
    assert_error(http.post(url, json={}, headers=auth), 422, "empty_message")
    r = http.post(url, json={"text": "あ" * 2001}, headers=auth)
    assert_error(r, 422, "message_too_long")
    assert r.json()["error"]["message"] == "質問が長すぎます（2001文字）。2000文字以内に短くして送信してください。"
    assert_error(http.post(url, json={"text": 42}, headers=auth), 422, "invalid_field")
    assert_error(http.post(url, json={"text": ["a"]}, headers=auth), 422, "invalid_field")
    assert_error(http.post(url, json={"text": "a", "idempotency_key": 7}, headers=auth), 422, "invalid_field")
    assert_error(http.post(url, json={"text": "a", "idempotency_key": "x" * 129}, headers=auth), 422, "invalid_field")
    assert_error(http.post(url, content=b"{not json", headers=auth), 400, "invalid_json")
    assert_error(http.post(url, content=b"\xff\xfe", headers=auth), 400, "invalid_json")
    assert_error(http.post(url, json=["text"], headers=auth), 400, "invalid_json")
    assert_error(http.post(url, content=b'{"text": "' + b"a" * 70_000 + b'"}', headers=auth), 413, "payload_too_large")
    assert_error(http.post("/api/conversations", content=b"[1]"), 400, "invalid_json")
    # Nothing of the refused messages was stored; a good one still goes through.
    assert http.get(url, headers=auth).json() == []
    assert http.post(url, json={"text": "会員数は？"}, headers=auth).status_code == 201


def test_routing_errors_have_the_same_shape(http):
    assert_error(http.get("/api/nothing-here"), 404, "not_found")
    assert_error(http.delete("/api/conversations"), 405, "method_not_allowed")
    assert_error(http.post("/api/conversations/nope/messages", json={"text": "a"}), 404, "conversation_not_found")
    assert_error(http.post("/api/messages/abc/feedback", json={"helpful": True}), 404, "not_found")


def test_feedback_errors(http):
    cid, auth = open_conversation(http)
    turn = http.post(f"/api/conversations/{cid}/messages", json={"text": "会員数は？"}, headers=auth).json()
    url = f"/api/messages/{turn['reply']['id']}/feedback"
    assert_error(http.post(url, json={"helpful": "yes"}, headers=auth), 422, "invalid_field")
    assert_error(http.post(url, json={"helpful": 1}, headers=auth), 422, "invalid_field")
    assert_error(http.post(url, json={}, headers=auth), 422, "invalid_field")
    assert_error(http.post(url, content=b"nope", headers=auth), 400, "invalid_json")
    assert_error(http.post(f"/api/messages/{turn['message']['id']}/feedback", json={"helpful": True}, headers=auth),
                 422, "not_a_reply")
    assert_error(http.post("/api/messages/999999999/feedback", json={"helpful": True}, headers=auth),
                 404, "message_not_found")
    assert http.post(url, json={"helpful": True}, headers=auth).json() == {"id": turn["reply"]["id"], "feedback": True}


# -- tokens ----------------------------------------------------------------------------------------------


def test_a_conversation_is_only_readable_with_its_token(http):
    cid, auth = open_conversation(http)
    other_cid, other_auth = open_conversation(http)
    turn = http.post(f"/api/conversations/{cid}/messages", json={"text": "会員数は？"}, headers=auth).json()
    url = f"/api/conversations/{cid}/messages"
    for headers in ({}, {"Authorization": "Bearer wrong"}, other_auth, {"Authorization": auth["Authorization"][7:]},
                    {"Authorization": "Basic " + auth["Authorization"][7:]}):
        assert_error(http.get(url, headers=headers), 404, "conversation_not_found")
        assert_error(http.post(url, json={"text": "こんにちは"}, headers=headers), 404, "conversation_not_found")
        assert_error(http.post(f"/api/messages/{turn['reply']['id']}/feedback", json={"helpful": True}, headers=headers),
                     404, "message_not_found")
    # An unknown id answers exactly like a known id with a wrong token: nothing to probe.
    assert http.get("/api/conversations/nope/messages", headers=auth).json() == http.get(url).json()
    assert len(http.get(url, headers=auth).json()) == 2
    assert http.get(f"/api/conversations/{other_cid}/messages", headers=other_auth).json() == []


# -- idempotency ---------------------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_is_answered_once(http):
    cid, auth = open_conversation(http)
    url = f"/api/conversations/{cid}/messages"
    first = http.post(url, json={"text": "会員数は？", "idempotency_key": "key-1"}, headers=auth)
    again = http.post(url, json={"text": "会員数は？"}, headers={**auth, "Idempotency-Key": "key-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["message"]["idempotency_key"] == "key-1"
    assert_error(http.post(url, json={"text": "別の質問", "idempotency_key": "key-1"}, headers=auth),
                 409, "idempotency_conflict")
    assert len(http.get(url, headers=auth).json()) == 2


def test_concurrent_sends_with_the_same_key_store_one_message(live_server):
    with httpx.Client(base_url=live_server, timeout=10) as http:
        cid, auth = open_conversation(http)
    url = f"{live_server}/api/conversations/{cid}/messages"
    barrier, results = threading.Barrier(8), []

    def send():
        with httpx.Client(timeout=10) as own:  # own connection each, so the workers really race
            barrier.wait()
            results.append(own.post(url, json={"text": "医療機関マスタはいつ更新されますか", "idempotency_key": "double"},
                                    headers=auth))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200] * 7 + [201]
    assert len({r.json()["reply"]["id"] for r in results}) == 1
    history = httpx.get(url, headers=auth).json()
    assert [m["role"] for m in history] == ["user", "bot"]


# -- suggest, openapi, widget routes -----------------------------------------------------------------------


def test_suggest(http):
    r = http.get("/api/suggest", params={"q": "医療機関マスタ"})
    assert r.status_code == 200
    suggestions = r.json()["suggestions"]
    assert 1 <= len(suggestions) <= 3
    assert suggestions[0]["slug"] == "institution-master-updates"
    assert all(sorted(s) == ["question", "slug", "title"] for s in suggestions)
    assert http.get("/api/suggest", params={"q": ""}).json() == {"suggestions": []}
    assert http.get("/api/suggest").json() == {"suggestions": []}
    assert_error(http.get("/api/suggest", params={"q": "あ" * 201}), 422, "query_too_long")


def test_openapi_describes_every_api_route(http, app):
    spec = http.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops if method != "parameters"}
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == documented


def test_widget_routes(http):
    js = http.get("/widget.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert js.headers["cache-control"] == "public, max-age=300"
    assert "etag" in js.headers
    assert http.get("/widget.js", headers={"If-None-Match": js.headers["etag"]}).status_code == 304
    frame = http.get("/widget/frame")
    assert frame.status_code == 200
    # The frame's own embedding rule, within the strict policy every page gets (handlers/web/headers.py).
    assert "frame-ancestors 'self'" in frame.headers["content-security-policy"].split("; ")
    assert http.get("/").status_code == 200


# -- XSS: what users type comes back as data, never as markup ---------------------------------------------------


def test_a_script_in_a_message_is_stored_as_text_and_served_as_json(http):
    cid, auth = open_conversation(http)
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    r = http.post(f"/api/conversations/{cid}/messages", json={"text": evil}, headers=auth)
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.json()["message"]["text"] == evil
    page = http.get("/kb", params={"q": evil})
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


# -- restart ----------------------------------------------------------------------------------------------


def test_history_survives_a_restart(server_process):
    server = server_process(workers=1, threads=2).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            cid, auth = open_conversation(http)
            turn = http.post(f"/api/conversations/{cid}/messages", json={"text": "会員数は？"}, headers=auth).json()
            http.post(f"/api/messages/{turn['reply']['id']}/feedback", json={"helpful": True}, headers=auth)
            before = http.get(f"/api/conversations/{cid}/messages", headers=auth).json()
    finally:
        server.stop()
    server = server_process(server="waitress", threads=2).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            after = http.get(f"/api/conversations/{cid}/messages", headers=auth).json()
            assert after == before and after[1]["feedback"] is True
            assert_error(http.get(f"/api/conversations/{cid}/messages"), 404, "conversation_not_found")
    finally:
        server.stop()


def unhelpful_then_next_step(http, answer, auth):
    """「役に立たなかった」 answers with the next step (the desk among the ways on), once per answer."""
    url = f"/api/messages/{answer['id']}/feedback"
    first = http.post(url, json={"helpful": False}, headers=auth).json()
    assert (first["id"], first["feedback"]) == (answer["id"], False)
    step = first["reply"]
    assert step["role"] == "bot" and step["in_reply_to"] == answer["id"]
    assert "handoff" in [a.get("id") for a in step["actions"]] + [b["id"] for b in step["buttons"]]
    assert http.post(url, json={"helpful": False}, headers=auth).json()["reply"] == step


def test_the_answers_say_whether_the_desk_holds_the_conversation(http):
    """`desk: {held, ticket}` in the answer to a message and, asked for, beside the history: the widget
    obeys it instead of guessing from the replies. The plain history stays an array."""
    cid, auth = open_conversation(http)
    url = f"/api/conversations/{cid}/messages"
    first = http.post(url, json={"text": "パスワードを忘れました"}, headers=auth).json()
    assert first["desk"] == {"held": False, "ticket": None}
    assert http.get(url + "?include=desk", headers=auth).json()["desk"] == {"held": False, "ticket": None}
    number = http.post(f"/api/conversations/{cid}/handoff", json={}, headers=auth).json()["ticket"]["number"]
    held = http.get(url + "?include=desk", headers=auth).json()
    assert held["desk"] == {"held": True, "ticket": number}
    assert [m["role"] for m in held["messages"]] == [m["role"] for m in http.get(url, headers=auth).json()]
    assert isinstance(http.get(url, headers=auth).json(), list)
    after = held["messages"][-1]["id"]
    polled = http.get(url + f"?after={after}&wait=0&include=desk", headers=auth).json()
    assert polled == {"messages": [], "desk": {"held": True, "ticket": number}}
    while_held = http.post(url, json={"text": "よろしくお願いします"}, headers=auth)
    assert while_held.status_code == 201 and while_held.json()["desk"] == {"held": True, "ticket": number}
    assert http.get(url + "?include=desk", headers={"Authorization": "Bearer wrong"}).status_code == 404
