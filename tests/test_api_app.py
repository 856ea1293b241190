"""API behaviour that depends on settings or failure, checked on an in-process app: rate limits,
a missing index, an unexpected error, and the serve command's own checks."""
from __future__ import annotations

import json

import pytest

from click.testing import CliRunner

from handlers.web.app import create_app
from tests.conftest import UNTHROTTLED

RATE_LIMITED = "短い時間に送信が集中しています。しばらく待ってからもう一度送信してください。"


def test_messages_are_rate_limited_per_conversation(instance):
    app = create_app({"INSTANCE_PATH": str(instance.path), "MESSAGE_RATE_LIMIT": "2 per minute"})
    client = app.test_client()
    conversations = []
    for _ in range(2):
        created = client.post("/api/conversations").get_json()
        conversations.append((created["id"], {"Authorization": f"Bearer {created['token']}"}))
    (cid, auth), (other, other_auth) = conversations
    url = f"/api/conversations/{cid}/messages"
    assert [client.post(url, json={"text": "会員数は？"}, headers=auth).status_code for _ in range(2)] == [201, 201]
    r = client.post(url, json={"text": "会員数は？"}, headers=auth)
    assert r.status_code == 429
    assert r.get_json() == {"error": {"code": "rate_limited", "message": RATE_LIMITED}}
    # Seconds until the one-minute window resets: counted down from 60, never more.
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Another conversation has its own allowance.
    assert client.post(f"/api/conversations/{other}/messages", json={"text": "こんにちは"}, headers=other_auth).status_code == 201
    app.extensions["helpdesk"].close()


def test_conversation_creation_is_rate_limited_per_address(instance):
    app = create_app({"INSTANCE_PATH": str(instance.path), "CONVERSATION_RATE_LIMIT": "1 per minute"})
    client = app.test_client()
    assert client.post("/api/conversations").status_code == 201
    assert client.post("/api/conversations").get_json()["error"]["code"] == "rate_limited"
    app.extensions["helpdesk"].close()


def test_rate_limits_can_be_switched_off(instance):
    app = create_app({"INSTANCE_PATH": str(instance.path), "CONVERSATION_RATE_LIMIT": "1 per minute",
                      "RATELIMIT_ENABLED": False})
    client = app.test_client()
    assert [client.post("/api/conversations").status_code for _ in range(3)] == [201] * 3
    app.extensions["helpdesk"].close()


def test_a_missing_index_is_a_503_with_what_to_do(tmp_path):
    """Only searching needs the index: a question and a search page answer 503, naming the command."""
    app = create_app({"INSTANCE_PATH": str(tmp_path), **UNTHROTTLED})
    client = app.test_client()
    opened = client.post("/api/conversations").get_json()
    r = client.post(f"/api/conversations/{opened['id']}/messages", json={"text": "会員数を知りたい"},
                    headers={"Authorization": f"Bearer {opened['token']}"})
    assert r.status_code == 503
    assert r.get_json()["error"]["code"] == "index_missing"
    assert "helpdesk index" in r.get_json()["error"]["message"]
    page = client.get("/kb?q=会員数")
    assert page.status_code == 503 and "<h1>準備中です</h1>" in page.get_data(as_text=True)
    assert "helpdesk index" in page.get_data(as_text=True)
    app.extensions["helpdesk"].close()


def test_an_unexpected_error_is_a_json_500_and_is_logged(app, caplog):
    def boom():
        raise RuntimeError("boom")

    app.add_url_rule("/api/boom", view_func=boom)
    app.add_url_rule("/boom", view_func=boom)
    client = app.test_client()
    r = client.get("/api/boom")
    assert r.status_code == 500
    assert r.get_json() == {"error": {"code": "internal_error",
                                      "message": "サーバーでエラーが発生しました。時間をおいてもう一度お試しください。"}}
    assert "boom" not in r.get_data(as_text=True)
    assert "unhandled error on GET /api/boom" in caplog.text
    page = client.get("/boom")
    assert page.status_code == 500 and "<h1>エラーが発生しました</h1>" in page.get_data(as_text=True)


def test_health(client):
    assert client.get("/api/health").get_json() == {"status": "ok"}


# -- the serve command ----------------------------------------------------------------------------------


def test_serve_has_help_for_every_option():
    from handlers.server.command import serve

    assert serve.help
    for param in serve.params:
        assert param.help, param.name
    from handlers.server.main import cli

    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--server [gunicorn|waitress]" in result.output


def test_serve_without_an_index_says_what_to_do(tmp_path):
    from handlers.server.main import cli

    result = CliRunner().invoke(cli, ["--instance", str(tmp_path), "serve"])
    assert result.exit_code == 1
    assert "検索索引がありません" in result.output and "index" in result.output


def test_serve_refuses_a_bad_config_file(instance):
    from handlers.server.main import cli

    instance.config_file.write_text(json.dumps({"ALLOWED_ORIGINS": ["not an origin"]}), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--instance", str(instance.path), "serve"])
    assert result.exit_code == 1
    assert "設定に誤りがあります" in result.output


@pytest.mark.parametrize("uri, storage", [("helpdesk-memory://", "SweepingMemoryStorage"),
                                          ("helpdesk-sqlite://", "SQLiteStorage")])
def test_rate_limit_counters_start_no_thread_per_request(instance, uri, storage):
    import threading

    app = create_app({"INSTANCE_PATH": str(instance.path), "CONVERSATION_RATE_LIMIT": "1000 per minute",
                      "RATELIMIT_STORAGE_URI": uri})
    assert type(app.extensions["helpdesk_limiter"].storage).__name__ == storage
    client = app.test_client()
    client.post("/api/conversations")
    before = {t.ident for t in threading.enumerate()}
    for _ in range(20):
        assert client.post("/api/conversations").status_code == 201
    assert {t.ident for t in threading.enumerate()} - before == set()
    app.extensions["helpdesk"].close()


def test_behind_a_trusted_proxy_each_client_is_limited_by_its_own_address(instance):
    """With TRUSTED_PROXIES=1 the limit counts the address nginx forwards, not nginx's own."""
    app = create_app({"INSTANCE_PATH": str(instance.path), "CONVERSATION_RATE_LIMIT": "1 per 5 minutes",
                      "TRUSTED_PROXIES": 1})
    client = app.test_client()
    first = {"X-Forwarded-For": "203.0.113.7"}
    assert client.post("/api/conversations", headers=first).status_code == 201
    assert client.post("/api/conversations", headers=first).status_code == 429
    assert client.post("/api/conversations", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 201
    app.extensions["helpdesk"].close()


def test_without_trusted_proxies_a_forwarded_address_is_ignored(instance):
    """Nobody may pick their own rate-limit key by sending X-Forwarded-For to a server without a proxy."""
    app = create_app({"INSTANCE_PATH": str(instance.path), "CONVERSATION_RATE_LIMIT": "1 per 7 minutes"})
    client = app.test_client()
    assert client.post("/api/conversations", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 201
    assert client.post("/api/conversations", headers={"X-Forwarded-For": "203.0.113.10"}).status_code == 429
    app.extensions["helpdesk"].close()
