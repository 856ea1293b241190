"""Malformed input is answered 4xx in the one JSON error shape, never 500 (issue 9, items 5 and 9):
a body nested deeper than the parser goes, a lone surrogate in a message or a password, an id larger
than SQLite can hold; a 405 names the allowed methods; the OpenAPI document says what the API checks."""
from __future__ import annotations

import re

import pytest

DEEP = "[" * 3000 + "]" * 3000  # 6 KB, nested 3,000 levels


def error_of(response) -> tuple[int, str]:
    body = response.get_json()
    assert sorted(body) == ["error"] and sorted(body["error"]) == ["code", "message"], body
    assert re.search(r"[ぁ-んァ-ン一-龥]", body["error"]["message"]), body
    return response.status_code, body["error"]["code"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def conversation(client):
    created = client.post("/api/conversations").get_json()
    return created["id"], {"Authorization": f"Bearer {created['token']}"}


def test_a_body_nested_3000_levels_is_invalid_json_everywhere(client, conversation):
    cid, auth = conversation
    asked = client.post(f"/api/conversations/{cid}/messages", json={"text": "会員数"}, headers=auth).get_json()
    csrf = client.get("/api/session").get_json()["csrf_token"]
    for path, headers in [
        ("/api/conversations", {}),
        (f"/api/conversations/{cid}/messages", auth),
        (f"/api/messages/{asked['reply']['id']}/feedback", auth),
        ("/api/session", {"X-CSRFToken": csrf}),
        ("/api/link-codes", {}),
    ]:
        for body in (DEEP, '{"text": ' + DEEP + "}"):
            r = client.post(path, data=body, content_type="application/json", headers=headers)
            assert error_of(r) == (400, "invalid_json"), path


def test_a_lone_surrogate_in_a_message_is_refused_at_the_edge(client, conversation):
    cid, auth = conversation
    r = client.post(f"/api/conversations/{cid}/messages", data='{"text": "会員\\ud800数"}',
                    content_type="application/json", headers=auth)
    assert error_of(r) == (422, "invalid_text")
    assert "「text」" in r.get_json()["error"]["message"]
    assert client.get(f"/api/conversations/{cid}/messages", headers=auth).get_json() == []


def test_a_lone_surrogate_in_a_password_is_refused_at_the_edge(client):
    csrf = client.get("/api/session").get_json()["csrf_token"]
    r = client.post("/api/session", data='{"login_id": "tokyo", "password": "pass\\ud800word-123"}',
                    content_type="application/json", headers={"X-CSRFToken": csrf})
    assert error_of(r) == (422, "invalid_text")
    assert "「password」" in r.get_json()["error"]["message"]


def test_feedback_for_an_id_beyond_sqlite_integers_is_not_found(client, conversation):
    _, auth = conversation
    for message_id in (2**63, 10**30):
        r = client.post(f"/api/messages/{message_id}/feedback", json={"helpful": True}, headers=auth)
        assert error_of(r) == (404, "message_not_found")


def test_405_names_the_allowed_methods(client):
    r = client.get("/api/conversations")
    assert error_of(r) == (405, "method_not_allowed")
    assert set(r.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    r = client.delete("/api/conversations/abc/messages")
    assert set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    page = client.post("/kb/delivery-settings")
    assert page.status_code == 405 and set(page.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert "<h1>この操作はできません</h1>" in page.get_data(as_text=True)


def test_openapi_has_the_idempotency_key_pattern_and_feedbacks_invalid_json(client):
    from handlers.web.api import IDEMPOTENCY_KEY

    spec = client.get("/api/openapi.json").get_json()
    post = spec["paths"]["/api/conversations/{conversation_id}/messages"]["post"]
    body_key = post["requestBody"]["content"]["application/json"]["schema"]["properties"]["idempotency_key"]
    header_key = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")["schema"]
    assert body_key["pattern"] == header_key["pattern"] == "^[\\x21-\\x7e]{1,128}$"
    pattern = re.compile(body_key["pattern"])
    for key in ("abc-123", "~" * 128, "a b", "", "x" * 129, "キー"):
        assert bool(pattern.match(key)) == bool(IDEMPOTENCY_KEY.fullmatch(key)), key
    feedback = spec["paths"]["/api/messages/{message_id}/feedback"]["post"]["responses"]
    assert "invalid_json" in feedback["400"]["description"]
    assert feedback["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
