"""Staff sign-in over HTTP: the session cookie's flags, CSRF, rate limits, one failure message, argon2
hashes, the asker taken from the session, the link-code API, the /login page, and the widget frame
signing in and showing a lookup table in Chromium against a real server."""
from __future__ import annotations

import re
import sqlite3

import httpx
import pytest
from argon2 import PasswordHasher

from handlers.web.app import create_app
from records.errors import UNAVAILABLE_JA
from tests.browser import format_violations, launch_chromium, new_page, run_axe, serious_violations
from tests.conftest import build_instance
from tests.staff import PASSWORD, add_records_and_staff

WRONG = "ログインIDまたはパスワードが正しくありません。"
TOO_MANY = "ログインの試行回数が上限に達しました。しばらく待ってからもう一度お試しください。"
CSRF_FAILED = "セッションの確認に失敗しました。ページを再読み込みしてから、もう一度お試しください。"


@pytest.fixture(scope="module")
def instance(tmp_path_factory, demo_db):
    instance = build_instance(tmp_path_factory.mktemp("web"))
    add_records_and_staff(instance, demo_db)
    return instance


@pytest.fixture
def make_app(instance):
    apps = []

    def make(**config):
        # Counters in memory, fresh for each app: the instance is shared by the module's tests, and
        # the rate-limit tests below count from zero.
        apps.append(create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True,
                                "RATELIMIT_STORAGE_URI": "helpdesk-memory://", **config}))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["helpdesk"].close()


@pytest.fixture
def client(make_app):
    return make_app().test_client()


def csrf(client) -> dict:
    return {"X-CSRFToken": client.get("/api/session").get_json()["csrf_token"]}


def sign_in(client, login_id="chiyoda", password=PASSWORD, **kwargs):
    return client.post("/api/session", json={"login_id": login_id, "password": password}, headers=csrf(client),
                       **kwargs)


def cookie_header(response) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("mamis_helpdesk_session=")]
    return header


def error(response) -> tuple:
    return response.status_code, response.get_json()["error"]["code"], response.get_json()["error"]["message"]


def staff_hash(instance, login_id="chiyoda") -> str:
    with sqlite3.connect(instance.helpdesk_db) as conn:
        return conn.execute("SELECT password_hash FROM accounts WHERE role = 'staff' AND login_id = ?",
                            (login_id,)).fetchone()[0]


# -- the session cookie ------------------------------------------------------------------------------------


def test_sign_in_sets_an_httponly_samesite_cookie(client):
    r = sign_in(client)
    assert r.status_code == 200
    body = r.get_json()
    assert body["signed_in"] is True
    assert body["staff"] == {"login_id": "chiyoda", "display_name": "千代田区医師会 事務局（テスト）", "level": "county",
                             "association_code": "13001", "association_name": "千代田区医師会"}
    assert [a["label"] for a in body["quick_actions"]][:2] == ["入会手続きの状況", "送付先の確認"]
    flags = [part.strip() for part in cookie_header(r).split(";")]
    assert "HttpOnly" in flags and "SameSite=Lax" in flags and "Secure" not in flags
    assert any(f.startswith("Expires=") for f in flags)  # a staff session lasts STAFF_SESSION_HOURS, not forever
    assert r.headers["Cache-Control"] == "no-store"
    assert client.get("/api/session").get_json()["signed_in"] is True


def test_cookie_is_secure_when_served_over_https(make_app):
    client = make_app(PUBLIC_URL="https://helpdesk.example-med.or.jp").test_client()
    flags = [part.strip() for part in cookie_header(client.get("/api/session")).split(";")]
    assert "Secure" in flags and "HttpOnly" in flags and "SameSite=Lax" in flags
    plain = make_app(PUBLIC_URL="http://127.0.0.1:8000").test_client()
    assert "Secure" not in cookie_header(plain.get("/api/session"))


# -- CSRF -----------------------------------------------------------------------------------------------------


def test_requests_authenticated_by_the_cookie_need_the_csrf_token(client):
    r = client.post("/api/session", json={"login_id": "chiyoda", "password": PASSWORD})
    assert error(r) == (400, "csrf_failed", CSRF_FAILED)
    r = client.post("/login", data={"login_id": "chiyoda", "password": PASSWORD})
    assert r.status_code == 400 and "<html lang=\"ja\">" in r.get_data(as_text=True)
    assert client.get("/api/session").get_json()["signed_in"] is False

    # Anonymous API calls carry no ambient authority and need no token (API clients keep working).
    assert client.post("/api/conversations").status_code == 201
    headers = csrf(client)
    assert sign_in(client).status_code == 200
    assert error(client.post("/api/conversations")) == (400, "csrf_failed", CSRF_FAILED)
    assert error(client.delete("/api/session")) == (400, "csrf_failed", CSRF_FAILED)
    assert error(client.post("/api/conversations", headers=headers))[1] == "csrf_failed"  # the token before sign-in
    assert client.post("/api/conversations", headers=csrf(client)).status_code == 201
    assert client.delete("/api/session", headers=csrf(client)).get_json()["signed_in"] is False


# -- failures and limits ------------------------------------------------------------------------------------------


def test_wrong_password_and_unknown_login_id_read_the_same(client):
    wrong = sign_in(client, password="not-the-password")
    unknown = sign_in(client, login_id="nobody-here")
    malformed = sign_in(client, login_id="??", password=None)
    assert error(wrong) == error(unknown) == error(malformed) == (401, "sign_in_failed", WRONG)

    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    pages = [client.post("/login", data={"csrf_token": token, "login_id": login_id, "password": "not-the-password"})
             for login_id in ("chiyoda", "nobody-here")]
    assert [p.status_code for p in pages] == [401, 401]
    assert [re.search(r'<p class="error"[^>]*>(.*?)</p>', p.get_data(as_text=True)).group(1) for p in pages] == [WRONG] * 2


def test_sign_in_is_rate_limited_per_login_id(make_app):
    client = make_app(SIGN_IN_ID_RATE_LIMIT="3 per minute", SIGN_IN_RATE_LIMIT="100 per minute").test_client()
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):  # changing address does not help
        assert sign_in(client, password="guess", environ_base={"REMOTE_ADDR": address}).status_code == 401
    r = sign_in(client, environ_base={"REMOTE_ADDR": "10.0.0.4"})  # even the right password now waits
    assert error(r) == (429, "sign_in_rate_limited", TOO_MANY)
    assert 0 < int(r.headers["Retry-After"]) <= 60
    assert sign_in(client, login_id="tokyo").status_code == 200  # another account is not locked


def test_sign_in_is_rate_limited_per_address_for_form_and_api_together(make_app):
    client = make_app(SIGN_IN_RATE_LIMIT="2 per minute", SIGN_IN_ID_RATE_LIMIT="100 per minute").test_client()
    assert sign_in(client, login_id="chuo", password="guess").status_code == 401
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    form = {"csrf_token": token, "login_id": "kita", "password": "guess"}
    assert client.post("/login", data=form).status_code == 401
    page = client.post("/login", data=form)
    assert page.status_code == 429 and TOO_MANY in page.get_data(as_text=True)
    assert error(sign_in(client, login_id="osaka")) == (429, "sign_in_rate_limited", TOO_MANY)
    assert sign_in(client, login_id="osaka", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200


def test_passwords_are_argon2id_hashes_rehashed_when_the_parameters_change(client, instance):
    stored = staff_hash(instance)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and PASSWORD not in stored
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with sqlite3.connect(instance.helpdesk_db) as conn:
        conn.execute("UPDATE accounts SET password_hash = ? WHERE role = 'staff' AND login_id = 'chiyoda'", (weak,))
    assert sign_in(client).status_code == 200
    rehashed = staff_hash(instance)
    assert rehashed != weak and rehashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert client.get("/api/session").get_json()["signed_in"] is True
    # A changed password ends the sessions signed in under the old one.
    with sqlite3.connect(instance.helpdesk_db) as conn:
        conn.execute("UPDATE accounts SET password_hash = ? WHERE role = 'staff' AND login_id = 'chiyoda'", (stored,))
    assert client.get("/api/session").get_json()["signed_in"] is False


# -- asking as the signed-in staff member ---------------------------------------------------------------------------


def open_conversation(client, headers=None):
    created = client.post("/api/conversations", headers=headers or {}).get_json()
    return created["id"], {"Authorization": f"Bearer {created['token']}"}


def test_the_asker_comes_from_the_session_never_from_the_body(client):
    assert sign_in(client, login_id="chuo").status_code == 200  # 中央区: 山田太郎 (千代田区) is not theirs
    token = csrf(client)
    cid, auth = open_conversation(client, token)
    claim = {"text": "会員番号1300001の送付先は", "asker": {"role": "staff", "association_code": "13001"},
             "role": "staff", "association_code": "13001", "member_number": "1300001"}
    r = client.post(f"/api/conversations/{cid}/messages", json=claim, headers={**auth, **token})
    assert r.status_code == 201
    assert (r.get_json()["reply"]["text"], r.get_json()["reply"]["table"]) == (UNAVAILABLE_JA, None)

    client.delete("/api/session", headers=token)
    assert sign_in(client, login_id="chiyoda").status_code == 200
    token = csrf(client)
    # chuo's conversation is not chiyoda's: the same token opens nothing.
    assert error(client.get(f"/api/conversations/{cid}/messages", headers=auth))[1] == "conversation_not_found"
    cid, auth = open_conversation(client, token)
    reply = client.post(f"/api/conversations/{cid}/messages", json={"text": "会員番号1300001の送付先は"},
                        headers={**auth, **token}).get_json()["reply"]
    assert reply["kind"] == "lookup" and reply["text"].startswith("【デモデータ（架空）】\n")
    assert reply["table"] == {"caption": "", "columns": ["送付物", "送付", "送付先"], "rows": [
        ["日医ニュース", "する", "勤務先"], ["日本医師会雑誌通常号", "する", "自宅"], ["日本医師会雑誌特別号", "しない", "—"]]}
    assert client.get(f"/api/conversations/{cid}/messages", headers=auth).get_json()[-1]["table"] == reply["table"]

    # After sign-out the transcript is nobody's to read, token or not.
    client.delete("/api/session", headers=token)
    assert error(client.get(f"/api/conversations/{cid}/messages", headers=auth))[1] == "conversation_not_found"
    r = client.post(f"/api/conversations/{cid}/messages", json={"text": "こんにちは"}, headers=auth)
    assert error(r)[1] == "conversation_not_found"


def test_anonymous_questions_for_records_are_told_to_sign_in(client):
    cid, auth = open_conversation(client)
    reply = client.post(f"/api/conversations/{cid}/messages", json={"text": "会員番号1300001の入会手続きはどこまで進んでいますか"},
                        headers=auth).get_json()["reply"]
    assert reply["kind"] == "sign_in_required" and "ログインが必要です" in reply["text"]


def test_link_code_api(client):
    r = client.post("/api/link-codes", json={"member_number": "1300001"})
    assert error(r) == (401, "sign_in_required", "この操作には職員ログインが必要です。ログインしてからもう一度お試しください。")
    sign_in(client)
    assert error(client.post("/api/link-codes", json={"member_number": "1300001"}))[1] == "csrf_failed"
    token = csrf(client)
    r = client.post("/api/link-codes", json={"member_number": "1300001"}, headers=token)
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    assert sorted(body) == ["code", "expires_at", "member_number", "telegram"]
    assert body["telegram"] is None  # the bot has never run: no username to link to yet
    assert re.fullmatch(r"[A-HJKMNP-Z2-9]{8}", body["code"])
    assert (body["member_number"], body["expires_at"]) == ("1300001", "2026-11-25T10:15:00+09:00")

    outside = client.post("/api/link-codes", json={"member_number": "2700001"}, headers=token)
    missing = client.post("/api/link-codes", json={"member_number": "1399999"}, headers=token)
    assert error(outside) == error(missing) == (404, "record_unavailable", UNAVAILABLE_JA)
    assert error(client.post("/api/link-codes", json={"member_number": "12"}, headers=token)) == (
        422, "invalid_query", "会員番号は7桁の数字で入力してください。")
    assert error(client.post("/api/link-codes", json={"member_number": 1300001}, headers=token))[1] == "invalid_field"


# -- the /login page ---------------------------------------------------------------------------------------------


def test_login_page_signs_in_and_out(client):
    page = client.get("/login?next=/kb")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="ja">' in html
    assert '<label for="login_id">ログインID</label>' in html and '<label for="password">パスワード</label>' in html
    assert 'autocomplete="current-password"' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    r = client.post("/login", data={"csrf_token": token, "login_id": "TOKYO", "password": PASSWORD, "next": "/kb"})
    assert (r.status_code, r.headers["Location"]) == (303, "/kb")
    html = client.get("/login").get_data(as_text=True)
    assert "東京都医師会 事務局（テスト）（東京都医師会）としてログインしています。" in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    r = client.post("/logout", data={"csrf_token": token})
    assert (r.status_code, r.headers["Location"]) == (303, "/login?signed_out=1")
    assert "ログアウトしました。" in client.get(r.headers["Location"]).get_data(as_text=True)
    assert client.get("/api/session").get_json()["signed_in"] is False


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_login_never_redirects_off_site(client, target):
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    r = client.post("/login", data={"csrf_token": token, "login_id": "chiyoda", "password": PASSWORD, "next": target})
    assert (r.status_code, r.headers["Location"]) == (303, "/")


# -- a real server, and the widget in Chromium -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(live_server_factory, demo_db):
    return live_server_factory(prepare=lambda instance: add_records_and_staff(instance, demo_db))


def test_a_real_server_signs_in_and_answers_a_lookup(server):
    with httpx.Client(base_url=server, timeout=10) as http:
        token = {"X-CSRFToken": http.get("/api/session").json()["csrf_token"]}
        r = http.post("/api/session", json={"login_id": "tokyo", "password": PASSWORD}, headers=token)
        assert r.status_code == 200
        flags = [p.strip() for p in r.headers["set-cookie"].split(";")]
        assert "HttpOnly" in flags and "SameSite=Lax" in flags
        token = {"X-CSRFToken": http.get("/api/session").json()["csrf_token"]}
        created = http.post("/api/conversations", headers=token).json()
        auth = {"Authorization": f"Bearer {created['token']}", **token}
        reply = http.post(f"/api/conversations/{created['id']}/messages",
                          json={"text": "会員番号1300002の入会手続きはどこまで進んでいますか"}, headers=auth).json()["reply"]
        assert "現在「都道府県医師会から差戻し中」です。" in reply["text"]
        assert reply["table"]["columns"] == ["日付", "段階", "処理"]


@pytest.mark.browser
def test_widget_frame_signs_in_and_shows_a_lookup_table(server):
    expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect
    with launch_chromium() as browser:
        page = new_page(browser)
        try:
            page.goto(server + "/")  # the demo page embeds the widget from the help desk's own site
            page.locator("mamis-helpdesk-widget .launcher").click()
            frame = page.frame_locator("mamis-helpdesk-widget iframe")
            frame.get_by_role("button", name="職員ログイン").click()
            expect(frame.get_by_label("ログインID")).to_be_focused()
            frame.get_by_label("ログインID").fill("chiyoda")
            frame.get_by_label("パスワード").fill("wrong-password")
            frame.get_by_role("button", name="ログイン", exact=True).click()
            expect(frame.locator("#sign-in-error")).to_have_text(WRONG)
            frame.get_by_label("パスワード").fill(PASSWORD)
            frame.get_by_role("button", name="ログイン", exact=True).click()
            expect(frame.locator("#account-status")).to_have_text("職員ログイン中：千代田区医師会 事務局（テスト）")
            expect(frame.locator(".msg-welcome").get_by_role("button", name="送付先の確認")).to_be_visible()
            violations = serious_violations(run_axe(next(f for f in page.frames if "/widget/frame" in f.url)))
            assert not violations, format_violations(violations)

            frame.locator("#input").fill("会員番号1300001の送付先は")
            frame.locator("#input").press("Enter")
            answer = frame.locator(".msg-bot:not(.msg-welcome)").last
            expect(answer.locator(".msg-text")).to_contain_text("デモデータ（架空）")
            table = answer.locator("table.reply-table")
            expect(table.locator("th")).to_have_text(["送付物", "送付", "送付先"])
            expect(table.locator("tbody tr").first.locator("td")).to_have_text(["日医ニュース", "する", "勤務先"])

            frame.get_by_role("button", name="ログアウト").click()
            expect(frame.get_by_role("button", name="職員ログイン")).to_be_visible()
            expect(frame.locator(".msg-bot:not(.msg-welcome)")).to_have_count(0)
        finally:
            page.context.close()
