"""The member CSV import: round trips, differences, encodings, rejected rows, atomicity."""
import dataclasses
import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from records.demo import generate_demo
from records.errors import CsvFormatError
from records.member_csv import COLUMNS, MemberRow, csv_header, write_members_csv
from records.sync import export_members_csv, import_members, load_member_rows

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "records.sqlite"
    generate_demo(path, members=300, seed=7)
    return path


@pytest.fixture
def db(tmp_path, demo_db) -> Path:
    """A private copy of the demo database, imported from its own full CSV."""
    csv_path = tmp_path / "full.csv"
    export_members_csv(demo_db, csv_path)
    path = tmp_path / "records.sqlite"
    import_members(path, csv_path, "full")
    return path


def _rows(path) -> list[MemberRow]:
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return load_member_rows(conn)
    finally:
        conn.close()


def _dump(path) -> dict:
    """Everything member-related in the database, for before/after comparisons."""
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                for t in ("members", "delivery_settings", "member_grams", "associations")}
    finally:
        conn.close()


def test_full_import_round_trips_the_demo(tmp_path, demo_db):
    csv_path = tmp_path / "full.csv"
    assert export_members_csv(demo_db, csv_path) == 300
    target = tmp_path / "records.sqlite"
    summary = import_members(target, csv_path, "full")
    assert summary.to_json() == {"mode": "full", "added": 300, "changed": 0, "deleted": 0, "rejected": []}
    assert _rows(target) == _rows(demo_db)


def test_second_full_import_changes_nothing(tmp_path, db):
    before = _dump(db)
    csv_path = tmp_path / "again.csv"
    export_members_csv(db, csv_path)
    summary = import_members(db, csv_path, "full")
    assert (summary.added, summary.changed, summary.deleted, summary.unchanged) == (0, 0, 0, 300)
    assert _dump(db) == before


def test_full_import_replaces_the_set(tmp_path, db):
    rows = _rows(db)
    kept, dropped = rows[:-5], rows[-5:]
    renamed = dataclasses.replace(kept[0], name="新井　一郎", kana="アライ　イチロウ")
    write_members_csv(tmp_path / "full.csv", [renamed] + kept[1:])
    summary = import_members(db, tmp_path / "full.csv", "full")
    assert (summary.added, summary.changed, summary.deleted) == (0, 1, 5)
    after = {r.member_number: r for r in _rows(db)}
    assert set(after) == {r.member_number for r in kept}
    assert after[renamed.member_number] == renamed
    assert not any(r.member_number in after for r in dropped)


def _diff_rows(rows):
    changed = dataclasses.replace(rows[0], kana="テスト　カエタ", name="試験　変太",
                                  delivery=((1, "home"), (0, None), (None, None)))
    moved = dataclasses.replace(rows[1], county_code="13002", county_name="中央区医師会", prefecture_code="13")
    added = MemberRow("4799999", "比嘉　新", "ヒガ　アラタ", "47", "47001", "那覇市医師会", "pending")
    return [changed, moved, added], ["changed", "changed", "added"], [rows[2].member_number]


def test_diff_applies_added_changed_deleted_and_is_idempotent(tmp_path, db):
    rows = _rows(db)
    upserts, ops, deleted = _diff_rows(rows)
    write_members_csv(tmp_path / "diff.csv", upserts, operations=ops, deleted=deleted)
    first = import_members(db, tmp_path / "diff.csv", "diff")
    assert first.to_json() == {"mode": "diff", "added": 1, "changed": 2, "deleted": 1, "rejected": []}
    after_first = _dump(db)
    second = import_members(db, tmp_path / "diff.csv", "diff")
    assert second.to_json() == {"mode": "diff", "added": 0, "changed": 0, "deleted": 0, "rejected": []}
    assert second.unchanged == 4
    assert _dump(db) == after_first
    now = {r.member_number: r for r in _rows(db)}
    for row in upserts:
        assert now[row.member_number] == row
    assert deleted[0] not in now
    assert len(now) == 300
    # grams follow the change: the new kana is searchable, the old one is gone for this member
    conn = sqlite3.connect(db)
    grams = {g for (g,) in conn.execute("SELECT gram FROM member_grams WHERE member_number = ?",
                                        (upserts[0].member_number,))}
    assert {"テス", "カエ", "試験", "変太"} <= grams
    assert conn.execute("SELECT count(*) FROM member_grams WHERE member_number = ?",
                        (deleted[0],)).fetchone()[0] == 0
    # the member who moved is now found under the new county only
    assert {c for (c,) in conn.execute("SELECT DISTINCT county_code FROM member_grams WHERE member_number = ?",
                                       (upserts[1].member_number,))} == {"13002"}
    conn.close()


def test_a_delivery_only_change_keeps_the_member_searchable(tmp_path, db):
    from records.access import Asker
    from records.lookup import Records

    row = _rows(db)[5]
    changed = dataclasses.replace(row, delivery=((0, None), (0, None), (0, None)), updated_on="2026-12-01")
    write_members_csv(tmp_path / "diff.csv", [changed], operations=["changed"])
    assert import_members(db, tmp_path / "diff.csv", "diff").changed == 1
    with Records(db, tmp_path / "audit.sqlite") as records:
        found = records.find_members(Asker.county_staff(row.county_code), row.name, limit=50)
        assert row.member_number in [m.member.member_number for m in found]


def test_diff_counts_by_effect_for_unknown_members(tmp_path, db):
    row = MemberRow("0199999", "北海　太郎", "ホッカイ　タロウ", "01", "01001", "札幌市医師会", "active")
    write_members_csv(tmp_path / "diff.csv", [row], operations=["changed"], deleted=["0199998"])
    summary = import_members(db, tmp_path / "diff.csv", "diff")
    assert (summary.added, summary.changed, summary.deleted, summary.unchanged) == (1, 0, 0, 1)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932", "shift_jis"])
def test_encodings_are_detected(tmp_path, db, encoding):
    row = MemberRow("1399990", "髙橋　一" if encoding != "shift_jis" else "高橋　一", "ﾀｶﾊｼ　ﾊｼﾞﾒ", "13",
                    "13001", "千代田区医師会", "active", delivery=((1, "workplace"), (0, None), (None, None)))
    write_members_csv(tmp_path / "diff.csv", [row], operations=["added"], encoding=encoding)
    summary = import_members(db, tmp_path / "diff.csv", "diff")
    assert summary.added == 1 and summary.rejected == []
    assert summary.encoding == {"shift_jis": "cp932"}.get(encoding, encoding)
    stored = {r.member_number: r for r in _rows(db)}["1399990"]
    assert stored.name == row.name
    assert stored.kana == "タカハシ　ハジメ"  # half-width kana folded to full width


def _write(path, text, encoding="utf-8"):
    Path(path).write_bytes(text.encode(encoding))


def test_rejected_rows_are_reported_with_line_and_reason(tmp_path, db):
    header = ",".join(csv_header())
    good = "1399991,新規　一郎,しんき いちろう,13,13001,千代田区医師会,在籍,,,2026-04-01,,する,自宅,しない,,,,2026-11-01"
    lines = [
        header,
        good,                                                                        # 2 ok (hiragana kana)
        "139999,短い　番号,ミジカイ,13,13001,千代田区医師会,在籍,,,,,,,,,,,",                 # 3
        "1399992,,ナマエナシ,13,13001,千代田区医師会,在籍,,,,,,,,,,,",                      # 4
        "1399993,英字　カナ,Yamada,13,13001,千代田区医師会,在籍,,,,,,,,,,,",                 # 5
        "1399994,県　違い,ケン　チガイ,13,27001,大阪市北区医師会,在籍,,,,,,,,,,,",            # 6
        "1399995,状態　不明,ジョウタイ,13,13001,千代田区医師会,休会,,,,,,,,,,,",               # 7
        "1399996,送付先　なし,ソウフサキ,13,13001,千代田区医師会,在籍,,,,,する,,,,,,",         # 8
        "1399991,重複　一郎,チョウフク,13,13001,千代田区医師会,在籍,,,,,,,,,,,",               # 9
        "1399997,列　不足,レツ,13",                                                    # 10
        "1399998,日付　誤り,ヒヅケ,13,13001,千代田区医師会,在籍,,,2026-02-30,,,,,,,,",         # 11
        '1399999,"改行\n入り",カイギョウ,13,13001,千代田区医師会,在籍,,,,,,,,,,,',             # 12-13
        "1399989,後続　正常,コウゾク,13,13001,千代田区医師会,在籍,1310100016,千代田やまだ内科クリニック,,,,,,,,,",  # 14
        "",
    ]
    _write(tmp_path / "full.csv", "\r\n".join(lines))
    summary = import_members(db, tmp_path / "full.csv", "full")
    assert [(r.line, r.reason) for r in summary.rejected] == [
        (3, "会員番号が7桁の数字ではありません（表計算ソフトで先頭の0が消えていないかご確認ください）。"),
        (4, "氏名が空欄です。"),
        (5, "氏名カナにカタカナ以外の文字が含まれています。"),
        (6, "郡市区等医師会コードの先頭2桁が都道府県医師会コードと一致しません。"),
        (7, "会員状態「休会」は使えません（在籍・入会手続中・退会のいずれか）。"),
        (8, "日医ニュースを送付する場合は送付先（勤務先・自宅・その他）が必要です。"),
        (9, "会員番号が2行目と重複しています。"),
        (10, "列の数（4）がヘッダー（18）と一致しません。"),
        (11, "入会日「2026-02-30」は日付として読めません（YYYY-MM-DD で記入してください）。"),
    ]
    stored = {r.member_number: r for r in _rows(db)}
    assert stored["1399991"].kana == "シンキ　イチロウ"
    assert stored["1399999"].name == "改行　入り"
    assert stored["1399989"].workplace_code == "1310100016"
    # a full import keeps members whose row was rejected instead of deleting them...
    # ...but none of these rejected numbers existed before, so the set is exactly the valid rows
    assert set(stored) == {"1399991", "1399999", "1399989"}
    assert summary.added == 3 and summary.deleted == 300


def test_full_import_keeps_members_whose_row_was_rejected(tmp_path, db):
    rows = _rows(db)
    write_members_csv(tmp_path / "full.csv", rows)
    text = (tmp_path / "full.csv").read_bytes().decode("utf-8").split("\r\n")
    victim = rows[10].member_number
    text[11] = text[11].replace(rows[10].kana, "ROMAJI")  # line 12 holds rows[10]
    _write(tmp_path / "full.csv", "\r\n".join(text))
    summary = import_members(db, tmp_path / "full.csv", "full")
    assert [(r.line, r.reason) for r in summary.rejected] == [(12, "氏名カナにカタカナ以外の文字が含まれています。")]
    assert summary.deleted == 0
    assert victim in {r.member_number for r in _rows(db)}


@pytest.mark.parametrize("content, mode, message", [
    (b"", "full", "ファイルが空です。"),
    ("会員番号,氏名\r\n1300001,山田　太郎\r\n".encode(), "full",
     "必須の列がありません: 氏名カナ、都道府県医師会コード、郡市区等医師会コード、郡市区等医師会名、会員状態。"
     "1行目に列名（ヘッダー）があるかご確認ください。"),
    ((",".join(csv_header()) + "\r\n").encode(), "diff",
     "差分ファイルに operation（処理区分）列がありません。全件ファイルは --full で取り込んでください。"),
    ((",".join(csv_header(diff=True)) + "\r\n").encode(), "full",
     "全件ファイルに operation 列があります。差分ファイルは --diff で取り込んでください。"),
    ((",".join(csv_header()) + "\r\n").encode(), "full",
     "取り込める行が1行もありません。全件取り込みでは全会員が削除されてしまうため中止しました。"),
    (b"\xef\xbb\xbf\xff\xfe", "full", "UTF-8（BOM付き）として読めません（0バイト目付近）。"),
    ("会員番号\t氏名\r\n".encode("utf-16"), "full",
     "UTF-16 のファイルには対応していません。CSV（UTF-8 または Shift_JIS）で保存し直してください。"),
    (b"\x81\x20\x85\x40", "full", "文字コードを判定できません。UTF-8 または Shift_JIS で保存してください（0バイト目付近）。"),
])
def test_unusable_files_change_nothing(tmp_path, db, content, mode, message):
    before = _dump(db)
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(CsvFormatError) as info:
        import_members(db, tmp_path / "bad.csv", mode)
    assert info.value.reason_ja == message
    assert _dump(db) == before


def test_japanese_operation_names_and_header_alias_are_accepted(tmp_path, db):
    header = ",".join(csv_header()) + ",処理区分"
    number = _rows(db)[0].member_number
    blank = "," * (len(COLUMNS) - 1)
    _write(tmp_path / "diff.csv", f"{header}\r\n{number}{blank},削除\r\n", "cp932")
    summary = import_members(db, tmp_path / "diff.csv", "diff")
    assert (summary.deleted, summary.rejected) == (1, [])


def test_an_error_inside_the_transaction_rolls_everything_back(tmp_path, db):
    before = _dump(db)
    rows = [dataclasses.replace(r, name="全員　変更") for r in _rows(db)]
    write_members_csv(tmp_path / "full.csv", rows)

    def explode(phase):
        if phase == "written":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        import_members(db, tmp_path / "full.csv", "full", on_phase=explode)
    assert _dump(db) == before


_KILLABLE = textwrap.dedent("""
    import sys, time
    from records.sync import import_members
    def pause(phase):
        print(phase, flush=True)
        if phase == sys.argv[3]:
            time.sleep(60)
    import_members(sys.argv[1], sys.argv[2], "full", on_phase=pause)
    print("done", flush=True)
""")


def _start_import(db, csv_path, stop_at):
    return subprocess.Popen([sys.executable, "-c", _KILLABLE, str(db), str(csv_path), stop_at],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killing_the_import_before_commit_leaves_the_previous_copy(tmp_path, db):
    from records.access import Asker
    from records.lookup import Records

    before = _dump(db)
    rows = [dataclasses.replace(r, name="全員　変更", kana="ゼンイン　ヘンコウ") for r in _rows(db)][:-20]
    write_members_csv(tmp_path / "full.csv", rows)
    proc = _start_import(db, tmp_path / "full.csv", "written")
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line.strip())
            if line.strip() == "written":
                break
        assert seen[-1] == "written", (seen, proc.stderr.read())
        # the writes are done but not committed: readers still see the old copy meanwhile
        with Records(db, tmp_path / "audit.sqlite") as records:
            member = records.member(Asker.prefecture_staff(rows[0].prefecture_code), rows[0].member_number)
            assert member.name != "全員　変更"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert _dump(db) == before
    # and the next import runs normally over the leftovers of the killed one
    summary = import_members(db, tmp_path / "full.csv", "full")
    assert (summary.changed, summary.deleted) == (280, 20)


def test_killing_the_import_at_any_moment_is_all_or_nothing(tmp_path, db):
    before = _dump(db)
    rows = [dataclasses.replace(r, name="全員　変更") for r in _rows(db)]
    write_members_csv(tmp_path / "full.csv", rows)
    proc = _start_import(db, tmp_path / "full.csv", "never")
    try:
        assert proc.stdout.readline().strip() == "parsed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    after = _dump(db)
    names = {m[1] for m in after["members"]}
    assert after == before or names == {"全員　変更"}


def test_progress_bar_only_for_large_files(tmp_path, db):
    few = _rows(db)[:50]
    write_members_csv(tmp_path / "small.csv", few, operations=["changed"] * len(few))
    out = io.StringIO()
    import_members(db, tmp_path / "small.csv", "diff", progress_file=out)
    assert out.getvalue() == ""
    many = [MemberRow(f"46{i:05d}", "鹿児　太郎", "カゴ　タロウ", "46", "46001", "鹿児島市医師会", "active")
            for i in range(10000, 16000)]
    write_members_csv(tmp_path / "large.csv", many, operations=["added"] * len(many))
    import_members(db, tmp_path / "large.csv", "diff", progress_file=out)
    assert "検証" in out.getvalue() and "6000/6000" in out.getvalue()
    import_members(db, tmp_path / "large.csv", "diff", progress_file=None)  # no TTY: no bar, no error


def test_a_second_import_waits_then_reports_busy(tmp_path, db):
    from records.errors import SyncBusy, message_ja

    write_members_csv(tmp_path / "full.csv", _rows(db))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(SyncBusy) as info:
            import_members(db, tmp_path / "full.csv", "full", busy_timeout_ms=100)
        assert message_ja(info.value) == "別の取り込み処理が実行中です。終了してから再度実行してください。"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert import_members(db, tmp_path / "full.csv", "full").unchanged == 300


def test_stored_grams_are_the_bigrams_the_search_uses(db):
    from records import names

    conn = sqlite3.connect(db)
    for row in _rows(db)[:50]:
        stored = {g for (g,) in conn.execute("SELECT gram FROM member_grams WHERE member_number = ?",
                                             (row.member_number,))}
        assert stored == names.member_grams(row.name, row.kana)
    conn.close()
