"""Notifications to subscribed doctors (written by sync-members and index, sent by the bot), and the
deep link with its QR code for the web chat."""
from __future__ import annotations

from datetime import datetime

from click.testing import CliRunner

from tests.conftest import NOW
from tests.telegram_fake import BOT_USERNAME
from tests.telegram_harness import bot, demo_instance, fake, wait_settled, wait_until  # noqa: F401 (fixtures)


def subscribe(bot, fake, chat: int, member: str | None) -> None:
    if member:
        code = bot.desk.core.links.issue(member, "test", datetime.fromisoformat(NOW)).code
        fake.command(chat, f"/link {code}")
    fake.command(chat, "/notify on")
    fake.wait_for("sendMessage", chat, 2 if member else 1)
    wait_until(lambda: bot.desk.outbox.notify_on(chat), what="subscribed")


def run_cli(demo_instance, *args):
    from handlers.cli.main import cli

    return CliRunner().invoke(cli, ["--instance", str(demo_instance.path), *args], catch_exceptions=False)


def test_sync_that_changes_a_linked_doctors_membership_notifies_once(bot, fake, demo_instance, tmp_path):
    from tests.conftest import member_change_file

    subscribe(bot, fake, 3001, "1300002")  # 佐藤 花子: 入会手続中
    subscribe(bot, fake, 3002, None)  # subscribed, not linked: no personal notification
    sent_before = len(fake.sent(3001))
    diff = member_change_file(demo_instance.records_db, "1300002", tmp_path / "diff.csv", status="active")
    result = run_cli(demo_instance, "sync-members", "--diff", str(diff), "--json")
    assert result.exit_code == 0, result.output
    note = fake.wait_for("sendMessage", 3001, sent_before + 1, timeout=10)[-1].params["text"]
    assert "会員状態が「入会手続中」から「在籍」に変わりました。" in note
    assert run_cli(demo_instance, "sync-members", "--diff", str(diff)).exit_code == 0  # the same file again
    wait_settled(fake, demo_instance.helpdesk_db, 3001, 3002)
    assert len(fake.sent(3001)) == sent_before + 1 and len(fake.sent(3002)) == 1


def test_sync_applications_stage_change_notifies_the_linked_doctor_once(bot, fake, demo_instance, tmp_path):
    """A difference file moves A2026-000003 (returned by the county) on to the prefecture: the linked,
    subscribed doctor is told once, /status shows the new stage at once, the same file again tells nobody."""
    import dataclasses

    from records.csv_format import write_csv
    from records.import_applications import APPLICATIONS, STEPS, load_application_rows
    from storage.sqlite import connect

    subscribe(bot, fake, 3003, "1300005")
    subscribe(bot, fake, 3005, "1300001")  # linked too, but none of their applications changes
    sent_before, other_before = len(fake.sent(3003)), len(fake.sent(3005))
    conn = connect(demo_instance.records_db, readonly=True)
    row = next(r for r in load_application_rows(conn) if r.application_number == "A2026-000003")
    conn.close()
    dates = dict(zip((s.column for s in STEPS), row.dates))
    dates.update(resubmitted_on="2026-11-20", county_approved_on="2026-11-25")
    moved = dataclasses.replace(row, stage="prefecture", state="in_review",
                                dates=tuple(dates[s.column] for s in STEPS))
    diff = tmp_path / "applications_diff.csv"
    write_csv(diff, APPLICATIONS, [moved], operations=["changed"])

    result = run_cli(demo_instance, "sync-applications", "--diff", str(diff), "--json")
    assert result.exit_code == 0, result.output
    assert '{"mode": "diff", "added": 0, "changed": 1, "deleted": 0, "rejected": []}' in result.output
    note = fake.wait_for("sendMessage", 3003, sent_before + 1, timeout=10)[-1].params["text"]
    assert "異動届（申請番号 A2026-000003）の状況が変わりました：都道府県医師会で確認中" in note
    fake.command(3003, "/status")  # the member's record, then their applications
    replies = fake.wait_for("sendMessage", 3003, sent_before + 3, timeout=10)[sent_before + 1:]
    status = "\n".join(call.params["text"] for call in replies)
    assert "A2026-000003" in status and "都道府県医師会で確認中" in status

    again = run_cli(demo_instance, "sync-applications", "--diff", str(diff), "--json")
    assert '"changed": 0' in again.output
    wait_settled(fake, demo_instance.helpdesk_db, 3003, 3005)
    assert len(fake.sent(3003)) == sent_before + 3 and len(fake.sent(3005)) == other_before


def test_a_new_release_note_is_announced_to_subscribers(bot, fake, demo_instance, tmp_path):
    from bot.messaging.notices import Notices
    from helpdesk.services import build_notices

    subscribe(bot, fake, 3004, None)
    before = len(fake.sent(3004))
    assert run_cli(demo_instance, "index").exit_code == 0  # records what exists; announces nothing
    notes = tmp_path / "release_notes"
    notes.mkdir()
    (notes / "2026-12-new.md").write_text(
        "---\ntitle: MAMIS 12月の更新\nkind: notice\naudience: all\ntags: [リリースノート]\nupdated: 2026-12-01\n"
        "---\n\n会員情報の画面を改善しました。\n", encoding="utf-8")
    from kb.indexer import build_index
    from tests.conftest import SOURCES

    build_index([*SOURCES, notes], demo_instance.kb_index)
    built = build_notices(demo_instance.path)
    notices = Notices(built.helpdesk_db, built.records_db, built.kb_index, notes,  # the test's own folder
                      "https://helpdesk.example-med.or.jp", built.clock)
    assert notices.announce_release_notes() >= 1
    note = fake.wait_for("sendMessage", 3004, before + 1, timeout=10)[-1].params["text"]
    assert "新しいリリースノートが公開されました：MAMIS 12月の更新" in note
    assert "https://helpdesk.example-med.or.jp/kb/2026-12-new" in note
    assert notices.announce_release_notes() == 0  # once only


def test_deep_link_and_qr_code_for_the_web_chat(bot, demo_instance):
    from bot.messaging.outbox import Outbox
    from handlers.web.app import create_app

    # The bot caches its name when it starts (post_init): wait for that, as the web chat would.
    wait_until(lambda: Outbox(bot.services.store, "telegram").meta("username"), what="the bot's name cached")
    app = create_app({"INSTANCE_PATH": str(demo_instance.path), "TESTING": True})
    client = app.test_client()
    link = client.get("/api/telegram/link/ABCD2345").get_json()
    assert link == {"url": f"https://t.me/{BOT_USERNAME}?start=ABCD2345", "qr": "/api/telegram/link/ABCD2345.svg"}
    svg = client.get("/api/telegram/link/ABCD2345.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.data.startswith(b"<svg") and b"<path" in svg.data
    assert client.get("/api/telegram/link/bad%20code").status_code == 404
    app.extensions["helpdesk"].close()
