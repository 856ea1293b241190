"""The services are built outside Flask, from an instance folder and the settings, and nothing but
searching needs the knowledge-base index: staff sign in, the session endpoint answers and article pages
show before `helpdesk index` has ever run."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import NOW, ROOT, UNTHROTTLED

PASSWORD = "correct-horse-battery-13"


@pytest.fixture
def no_index_instance(tmp_path):
    """An instance folder with member data (empty, migrated) and one staff account, and no index."""
    from bot import Store
    from bot.accounts.staff import StaffAccounts
    from helpdesk.instance import Instance
    from records.schema import connect_writer

    instance = Instance.at(tmp_path / "instance")
    connect_writer(instance.records_db).close()
    store = Store(instance.helpdesk_db)
    StaffAccounts(store, records_db=instance.records_db).add(
        "tokyo", "東京都医師会 事務局（テスト）", "prefecture", "13", PASSWORD, NOW)
    store.close()
    assert not instance.kb_index.exists()
    return instance


def test_services_start_without_an_index_and_sign_a_staff_member_in(no_index_instance):
    from bot import IndexMissing
    from helpdesk.services import build_services
    from helpdesk.settings import load_settings

    services = build_services(no_index_instance.path, load_settings(no_index_instance.path, {"NOW": NOW}))
    try:
        core = services.core()
        account = services.accounts().authenticate("tokyo", PASSWORD, core.now())
        assert (account.login_id, account.level, account.association_code) == ("tokyo", "prefecture", "13")
        assert core.now() == NOW
        assert services.searcher().article("delivery-settings").title.startswith("日医ニュース・日本医師会雑誌の送付区分設定")
        with pytest.raises(IndexMissing):
            services.searcher().search("会員数", 5)
    finally:
        services.close()
    assert not no_index_instance.kb_index.exists()


def test_the_services_path_imports_no_flask():
    """helpdesk.services, .settings and .errors are what the Telegram process and the CLI build on."""
    code = ("import sys; import helpdesk.services, helpdesk.settings, helpdesk.errors; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug', 'telegram')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_over_http_without_an_index_sign_in_session_and_articles_work(no_index_instance):
    from handlers.web.app import create_app

    app = create_app({"INSTANCE_PATH": str(no_index_instance.path), "NOW": NOW, **UNTHROTTLED})
    client = app.test_client()
    try:
        session = client.get("/api/session")
        assert session.status_code == 200 and session.get_json()["signed_in"] is False
        signed_in = client.post("/api/session", json={"login_id": "tokyo", "password": PASSWORD},
                                headers={"X-CSRFToken": session.get_json()["csrf_token"]})
        assert signed_in.status_code == 200
        assert signed_in.get_json()["staff"]["login_id"] == "tokyo"
        assert client.get("/api/session").get_json()["signed_in"] is True
        page = client.get("/kb/delivery-settings")
        assert page.status_code == 200
        assert "日医ニュース・日本医師会雑誌の送付区分設定" in page.get_data(as_text=True)
        assert client.get("/kb/no-such-article").status_code == 404
        listing = client.get("/kb")
        assert listing.status_code == 200 and "/kb/delivery-settings" in listing.get_data(as_text=True)
    finally:
        app.extensions["helpdesk"].close()
    assert not no_index_instance.kb_index.exists()
