"""`helpdesk sync-institutions`, `sync-applications` and `sync-reports`: the formats, the guarantees they
share with sync-members (one transaction, idempotent, encodings, per-row rejections), the column map, and
the examples in docs/examples imported end to end."""
from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from datetime import date
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from helpdesk.instance import Instance
from records.access import Asker
from records.csv_format import csv_header, write_csv
from records.demo_material import WELL_KNOWN_MEMBERS
from records.errors import CsvFormatError
from records.importer import run_import
from records.kinds import KINDS, export_files
from records.lookup import Records
from records.member_csv import write_members_csv
from records.sync import load_member_rows
from storage.sqlite import connect

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
TABLES = ("associations", "members", "member_grams", "delivery_settings", "institutions", "institution_grams",
          "applications", "fd_reports")


def cli(instance: Instance, *args):
    from handlers.cli.main import cli as helpdesk

    return CliRunner().invoke(helpdesk, ["--instance", str(instance.path), *args])


def dump(db: Path) -> dict:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def demo_files(demo_db, tmp_path_factory) -> Path:
    """The demo database written as the four import files."""
    folder = tmp_path_factory.mktemp("files")
    export_files(demo_db, folder)
    return folder


@pytest.fixture
def examples_instance(tmp_path, demo_db) -> Instance:
    """An instance whose members are the demo's well-known ones, imported with sync-members."""
    instance = Instance.at(tmp_path / "instance")
    conn = connect(demo_db, readonly=True)
    members = [r for r in load_member_rows(conn) if r.member_number in WELL_KNOWN_MEMBERS]
    conn.close()
    write_members_csv(tmp_path / "members.csv", members)
    assert cli(instance, "sync-members", "--full", str(tmp_path / "members.csv")).exit_code == 0
    return instance


def sync(instance, kind: str, mode: str, path) -> dict:
    result = cli(instance, f"sync-{kind}", f"--{mode}", str(path), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output.splitlines()[-1])


@pytest.mark.parametrize("name", ["sync-institutions", "sync-applications", "sync-reports"])
def test_every_sync_command_and_option_has_help(name):
    from handlers.cli.main import cli as helpdesk

    command = helpdesk.commands[name]
    assert command.help and command.help.strip()
    assert all(p.help and p.help.strip() for p in command.params if isinstance(p, click.Option))
    assert CliRunner().invoke(command, ["--help"]).exit_code == 0


def test_the_examples_import_and_answer_the_lookups(examples_instance, tmp_path):
    inst = examples_instance
    assert sync(inst, "institutions", "full", EXAMPLES / "institutions.csv") == {
        "mode": "full", "added": 5, "changed": 0, "deleted": 0, "rejected": []}
    assert sync(inst, "applications", "full", EXAMPLES / "applications.csv") == {
        "mode": "full", "added": 5, "changed": 0, "deleted": 0, "rejected": []}
    assert sync(inst, "reports", "full", EXAMPLES / "fd_reports.csv") == {
        "mode": "full", "added": 3, "changed": 0, "deleted": 0, "rejected": []}
    before = dump(inst.records_db)
    for kind, name in (("institutions", "institutions.csv"), ("applications", "applications.csv"),
                       ("reports", "fd_reports.csv")):  # the same files again write nothing
        assert sync(inst, kind, "full", EXAMPLES / name) == {
            "mode": "full", "added": 0, "changed": 0, "deleted": 0, "rejected": []}
    assert dump(inst.records_db) == before

    with Records(inst.records_db, inst.audit_db, today=lambda: date(2026, 11, 30)) as records:
        assert records.dataset_label() is None  # real data: no demo mark
        staff = Asker.county_staff("13001")
        returned = records.application(staff, "A2026-000001")
        assert (returned.status_label, returned.return_reason) == (
            "都道府県医師会から差戻し中", "勤務先医療機関が厚生局の登録待ちのため、医療機関名の確認が必要です。")
        assert [e.label for e in returned.history] == [
            "2026-10-20 申請者 提出", "2026-10-28 郡市区等医師会 承認",
            "2026-11-10 都道府県医師会 差戻し（理由: 勤務先医療機関が厚生局の登録待ちのため、医療機関名の確認が必要です。）"]
        assert [a.application_number for a in records.applications(staff, "1300005")] == ["A2025-000001"]
        report = records.family_doctor_report(Asker.county_staff("13002"), "1310200022")
        assert (report.status_label, report.return_reason) == (
            "郡市区等医師会から差戻し中", "報告項目（時間外の診療体制）の記載漏れがあります。")
        waiting = records.find_institutions(staff, "神田ひだまり在宅クリニック")[0][0]
        assert (waiting.master_status, waiting.window.visible_from.isoformat(),
                waiting.window.visible_by.isoformat()) == ("waiting_bureau", "2026-11-29", "2027-01-11")


def test_the_demo_written_as_files_imports_to_the_same_database(demo_db, demo_files, tmp_path):
    target = tmp_path / "records.sqlite"
    for kind in KINDS.values():
        summary = run_import(target, demo_files / kind.file_name, "full", kind)
        assert summary.rejected == [] and summary.changed == summary.deleted == 0, kind.name
    want, got = dump(demo_db), dump(target)
    for table in TABLES:
        if table == "associations":  # the demo seeds every county; files carry those in use
            assert set(got[table]) <= set(want[table])
        else:
            assert got[table] == want[table], table
    copy = tmp_path / "demo.sqlite"
    shutil.copy(demo_db, copy)
    for kind in KINDS.values():  # the demo's own rows carry the same hashes: importing them changes nothing
        summary = run_import(copy, demo_files / kind.file_name, "full", kind)
        assert (summary.added, summary.changed, summary.deleted) == (0, 0, 0), kind.name


def test_bad_rows_are_rejected_with_line_and_reason_and_the_rest_imported(examples_instance, tmp_path):
    inst = examples_instance
    text = (EXAMPLES / "institutions.csv").read_text(encoding="utf-8").splitlines()
    text.append("131010001,桜田クリニック,サクラダクリニック,,東京都千代田区1-1,13,13001,,診療所,,,,,,,")
    text.append("1310100999,浪速クリニック,ナニワクリニック,,大阪府大阪市中央区1-1,27,27099,,診療所,,,,,,,")
    text.append("1310100016,重複クリニック,チョウフククリニック,,東京都千代田区2-2,13,13001,,診療所,,,,,,,")
    (tmp_path / "institutions.csv").write_text("\r\n".join(text) + "\r\n", encoding="utf-8")
    assert sync(inst, "institutions", "full", tmp_path / "institutions.csv")["rejected"] == [
        {"line": 7, "reason": "医療機関コードが10桁の数字ではありません（表計算ソフトで先頭の0が消えていないかご確認ください）。"},
        {"line": 8, "reason": "医療機関コードの先頭2桁が都道府県コードと一致しません。"},
        {"line": 9, "reason": "医療機関が2行目と重複しています。"},
    ]
    apps = (EXAMPLES / "applications.csv").read_text(encoding="utf-8").splitlines()
    apps[1] = apps[1].replace("勤務先医療機関が厚生局の登録待ちのため、医療機関名の確認が必要です。", "")
    apps.append("A2026-000009,1300004,異動届,13002,,13999,,2026-11-20,郡市区等医師会,審査中,,,,,,,,")
    (tmp_path / "applications.csv").write_text("\r\n".join(apps) + "\r\n", encoding="utf-8")
    summary = sync(inst, "applications", "full", tmp_path / "applications.csv")
    assert summary["rejected"] == [
        {"line": 2, "reason": "差戻しの申請には差戻し日と差戻し理由が必要です。"},
        {"line": 7, "reason": "郡市区等医師会コード「13999」は登録されていません（会員CSVの取り込みで登録されます。"
                              "この行で登録するには郡市区等医師会名も記入してください）。"},
    ]
    assert summary["added"] == 4
    reports = (EXAMPLES / "fd_reports.csv").read_text(encoding="utf-8") + "1310100024,2025,2026-01-10,完了,承認,,,,,,\r\n"
    (tmp_path / "fd_reports.csv").write_text(reports, encoding="utf-8")
    assert sync(inst, "reports", "full", tmp_path / "fd_reports.csv")["rejected"] == [
        {"line": 5, "reason": "承認された報告には都道府県医師会承認日が必要です。"}]
    reports = (EXAMPLES / "fd_reports.csv").read_text(encoding="utf-8") + "1310300030,2025,2026-01-10,郡市区等医師会,審査中,,,,,,\r\n"
    (tmp_path / "fd_reports.csv").write_text(reports, encoding="utf-8")
    assert sync(inst, "reports", "full", tmp_path / "fd_reports.csv")["rejected"] == [
        {"line": 5, "reason": "医療機関コード「1310300030」の医療機関が医療機関マスタにありません"
                              "（先に helpdesk sync-institutions で取り込んでください）。"}]


def test_a_full_import_keeps_what_a_rejected_row_names(examples_instance, tmp_path):
    inst = examples_instance
    sync(inst, "institutions", "full", EXAMPLES / "institutions.csv")
    sync(inst, "reports", "full", EXAMPLES / "fd_reports.csv")
    rows = (EXAMPLES / "fd_reports.csv").read_text(encoding="utf-8").splitlines()
    rows[1] = rows[1].replace(",完了,承認,", ",完了,差戻し,")  # a bad row: the report stays as it was
    (tmp_path / "fd_reports.csv").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    summary = sync(inst, "reports", "full", tmp_path / "fd_reports.csv")
    assert (summary["deleted"], [r["line"] for r in summary["rejected"]]) == (0, [2])


@pytest.mark.parametrize("kind, name", [("institutions", "institutions.csv"), ("applications", "applications.csv"),
                                        ("reports", "fd_reports.csv")])
def test_whole_file_errors_change_nothing_and_exit_non_zero(examples_instance, tmp_path, kind, name):
    inst = examples_instance
    sync(inst, "institutions", "full", EXAMPLES / "institutions.csv")
    before = dump(inst.records_db)
    header = csv_header(KINDS[kind].format)
    required = next(c.header for c in KINDS[kind].format.columns if c.required)
    (tmp_path / "missing.csv").write_text(",".join(h for h in header if h != required) + "\r\n", encoding="utf-8")
    result = cli(inst, f"sync-{kind}", "--full", str(tmp_path / "missing.csv"))
    assert result.exit_code == 1 and f"Error: 必須の列がありません: {required}。" in result.output
    (tmp_path / "empty.csv").write_text(",".join(header) + "\r\n", encoding="utf-8")
    result = cli(inst, f"sync-{kind}", "--full", str(tmp_path / "empty.csv"))
    assert result.exit_code == 1 and "取り込める行が1行もありません。" in result.output
    result = cli(inst, f"sync-{kind}", "--diff", str(EXAMPLES / name))
    assert result.exit_code == 1 and "operation（処理区分）列がありません" in result.output
    assert dump(inst.records_db) == before


def test_differences_apply_by_effect_and_twice_change_nothing(examples_instance, tmp_path):
    inst = examples_instance
    for kind, name in (("institutions", "institutions.csv"), ("applications", "applications.csv"),
                       ("reports", "fd_reports.csv")):
        sync(inst, kind, "full", EXAMPLES / name)
    conn = connect(inst.records_db, readonly=True)
    yamada = next(r for r in KINDS["institutions"].load_rows(conn) if r.institution_code == "1310100016")
    conn.close()
    diff = tmp_path / "institutions_diff.csv"
    write_csv(diff, KINDS["institutions"].format, [dataclasses.replace(yamada, address="東京都千代田区九段南1-1-1")],
              operations=["changed"], deleted=[{"institution_code": "1310200022"}])
    assert sync(inst, "institutions", "diff", diff) == {
        "mode": "diff", "added": 0, "changed": 1, "deleted": 1, "rejected": []}
    assert sync(inst, "institutions", "diff", diff) == {
        "mode": "diff", "added": 0, "changed": 0, "deleted": 0, "rejected": []}
    conn = connect(inst.records_db, readonly=True)
    # the removed institution's report went with it; the changed one kept its id and its report
    assert conn.execute("SELECT i.institution_code FROM fd_reports r JOIN institutions i ON i.id = r.institution_id "
                        "ORDER BY 1").fetchall() == [("1310100016",), ("2710100032",)]
    conn.close()
    with Records(inst.records_db, inst.audit_db) as records:
        found = records.institution(Asker.county_staff("13001"), "1310100016")
        assert found.address == "東京都千代田区九段南1-1-1"
        assert records.find_institutions(Asker.county_staff("13001"), "やまだ内科")[0][0].institution_code == "1310100016"


def test_shift_jis_files_are_read(examples_instance, tmp_path):
    path = tmp_path / "institutions_sjis.csv"
    path.write_bytes((EXAMPLES / "institutions.csv").read_text(encoding="utf-8").encode("cp932"))
    result = cli(examples_instance, "sync-institutions", "--full", str(path))
    assert result.exit_code == 0 and "文字コード: cp932" in result.output


def test_the_column_map_renames_a_received_files_headers(examples_instance, tmp_path):
    inst = examples_instance
    received = (EXAMPLES / "institutions.csv").read_text(encoding="utf-8").replace(
        "医療機関コード,医療機関名,", "施設コード,施設名称,", 1)
    (tmp_path / "received.csv").write_text(received, encoding="utf-8")
    result = cli(inst, "sync-institutions", "--full", str(tmp_path / "received.csv"))
    assert result.exit_code == 1 and "必須の列がありません: 医療機関名。" in result.output
    (inst.path / "config.toml").write_text(
        '[IMPORT_COLUMNS.institutions]\n"施設コード" = "医療機関コード"\n"施設名称" = "医療機関名"\n', encoding="utf-8")
    assert sync(inst, "institutions", "full", tmp_path / "received.csv")["added"] == 5


@pytest.mark.parametrize("toml, fault", [
    ('[IMPORT_COLUMNS.clinics]\n"a" = "医療機関名"\n',
     "取り込みの種類「clinics」はありません（members・institutions・applications・reports のいずれか）。"),
    ('[IMPORT_COLUMNS.institutions]\n"施設名称" = "名称"\n',
     "institutions の「施設名称」の読み替え先「名称」は institutions の列名ではありません（列名は docs/records.md）。"),
    ('[IMPORT_COLUMNS.reports]\n"a" = "年度"\n"b" = "年度"\n', "reports で同じ列名に読み替える列が2つ以上あります。"),
])
def test_a_wrong_column_map_stops_with_a_clear_error(examples_instance, toml, fault):
    (examples_instance.path / "config.toml").write_text(toml, encoding="utf-8")
    result = cli(examples_instance, "sync-institutions", "--full", str(EXAMPLES / "institutions.csv"))
    assert result.exit_code == 1
    assert result.output == f"Error: 設定 IMPORT_COLUMNS の値が正しくありません（config.toml）。{fault}\n"


def test_a_failure_inside_the_transaction_leaves_the_previous_data(examples_instance):
    inst = examples_instance
    sync(inst, "institutions", "full", EXAMPLES / "institutions.csv")
    before = dump(inst.records_db)

    def explode(phase):
        if phase == "written":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        run_import(inst.records_db, EXAMPLES / "applications.csv", "full", KINDS["applications"], on_phase=explode)
    assert dump(inst.records_db) == before


def test_readyz_reports_each_kinds_last_import(examples_instance):
    from handlers.web.health import check_imports

    sync(examples_instance, "institutions", "full", EXAMPLES / "institutions.csv")
    parts = check_imports(examples_instance, max_days=45)
    assert {k: v["ok"] for k, v in parts.items()} == {
        "institutions_data": True, "applications_data": False, "reports_data": False}
    assert parts["institutions_data"]["mode"] == "full" and parts["institutions_data"]["added"] == 5
    assert check_imports(examples_instance, max_days=0)["institutions_data"]["error"] == (
        "医療機関マスタの最後の取り込みから 0 日以上たっています")


def test_wrong_csv_is_a_format_error_not_a_crash(tmp_path):
    (tmp_path / "x.csv").write_bytes(b"\xef\xbb\xbf\xff\xfe")
    with pytest.raises(CsvFormatError):
        run_import(tmp_path / "r.sqlite", tmp_path / "x.csv", "full", KINDS["reports"])


def test_metrics_export_each_kinds_last_import(examples_instance):
    from handlers.web.metrics import exposition

    sync(examples_instance, "institutions", "full", EXAMPLES / "institutions.csv")
    text = exposition(examples_instance)[0].decode()
    assert 'helpdesk_import_rows{effect="added",kind="institutions"} 5.0' in text
    assert 'helpdesk_import_rows{effect="added",kind="members"} 7.0' in text
    assert 'helpdesk_import_age_seconds{kind="institutions"}' in text
    assert 'kind="applications"' not in text  # never imported: no figure rather than a made-up one


def test_imported_records_answer_in_the_web_chat_without_the_demo_mark(examples_instance, searcher, tmp_path):
    """Import → the conversation core's look-up (what the web chat and Telegram call), real data unmarked."""
    from datetime import datetime

    from bot import JST, Core, Store
    from tests.staff import staff_asker

    inst = examples_instance
    for kind, name in (("institutions", "institutions.csv"), ("applications", "applications.csv"),
                       ("reports", "fd_reports.csv")):
        sync(inst, kind, "full", EXAMPLES / name)
    now = datetime(2026, 11, 25, 10, 0, tzinfo=JST)
    records = Records(inst.records_db, inst.audit_db, today=lambda: now.date())
    store = Store(tmp_path / "helpdesk.sqlite")
    try:
        core = Core(searcher, store, lambda: now, records=records)
        asker = staff_asker("chiyoda")
        conversation = core.open_conversation("test", asker).conversation.id
        reply = core.reply(conversation, "A2026-000001の状況を教えて", asker, "test").reply
        assert reply.kind == "lookup" and not reply.text.startswith("【デモデータ（架空）】")
        assert "現在「都道府県医師会から差戻し中」です。" in reply.text
        reply = core.reply(conversation, "「神田ひだまり在宅クリニック」はマスタに載っていますか", asker, "test").reply
        assert ("マスタ更新の見込み", "2026年11月28日〜2027年1月10日の週末夜間（目安）") in reply.table.rows
    finally:
        records.close()
        store.close()


def test_demo_data_can_also_write_the_four_files(tmp_path):
    demo = Instance.at(tmp_path / "demo")
    result = cli(demo, "demo-data", "--members", "120", "--files", str(tmp_path / "files"))
    assert result.exit_code == 0, result.output
    assert "取り込み用CSVを書き出しました" in result.output and "members.csv 120 行" in result.output
    real = Instance.at(tmp_path / "real")
    for kind in KINDS.values():  # the demo taking the real path, in the documented order
        assert sync(real, kind.name, "full", tmp_path / "files" / kind.file_name)["rejected"] == []
    assert dump(real.records_db)["applications"] == dump(demo.records_db)["applications"]


def test_a_changed_application_keeps_its_indexes_right(examples_instance, tmp_path):
    """A change writes an application's indexed columns (member number, submission date) only when they
    differ; both kinds of change must still land in the row and in its index."""
    inst = examples_instance
    sync(inst, "applications", "full", EXAMPLES / "applications.csv")
    conn = connect(inst.records_db, readonly=True)
    first = KINDS["applications"].load_rows(conn)[0]
    conn.close()
    other = next(m for m in WELL_KNOWN_MEMBERS if m != first.member_number)
    moved = dataclasses.replace(first, member_number=other, dates=("2026-01-05", *first.dates[1:]))
    diff = tmp_path / "applications_diff.csv"
    write_csv(diff, KINDS["applications"].format, [moved], operations=["changed"])
    assert sync(inst, "applications", "diff", diff)["changed"] == 1
    conn = connect(inst.records_db, readonly=True)
    by_member = "SELECT application_number, submitted_on FROM applications WHERE member_number = :m"
    assert (first.application_number, "2026-01-05") in conn.execute(by_member, {"m": other}).fetchall()
    assert first.application_number not in {n for n, _ in conn.execute(by_member, {"m": first.member_number})}
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
