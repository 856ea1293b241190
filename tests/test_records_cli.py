"""`helpdesk demo-data` and `helpdesk sync-members`, driven through click's CliRunner."""
import json

import click
import pytest
from click.testing import CliRunner

from helpdesk.instance import Instance
from handlers.cli.records import demo_data, sync_members
from records.member_csv import MemberRow, csv_header, write_members_csv
from records.sync import export_members_csv

COMMANDS = [demo_data, sync_members]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_and_option_has_help(command):
    assert command.help and command.help.strip()
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help and param.help.strip(), param.name
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_demo_data_creates_and_refuses_to_overwrite(tmp_path):
    instance = Instance.at(tmp_path)
    runner = CliRunner()
    result = runner.invoke(demo_data, ["--members", "120", "--seed", "5"], obj=instance)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"デモデータ（架空）を作成しました: {instance.records_db}")
    assert "会員 120 人" in result.output
    again = runner.invoke(demo_data, ["--members", "120"], obj=instance)
    assert again.exit_code == 1
    assert again.output == (f"Error: {instance.records_db} には既にデモデータがあります。"
                            "置き換える場合は --force を指定してください。\n")
    forced = runner.invoke(demo_data, ["--members", "130", "--force"], obj=instance)
    assert forced.exit_code == 0 and "会員 130 人" in forced.output


def test_sync_members_full_and_diff_with_json(tmp_path):
    instance = Instance.at(tmp_path / "inst")
    runner = CliRunner()
    source = Instance.at(tmp_path / "source")
    runner.invoke(demo_data, ["--members", "100"], obj=source)
    export_members_csv(source.records_db, tmp_path / "full.csv", encoding="cp932")
    result = runner.invoke(sync_members, ["--full", str(tmp_path / "full.csv"), "--json"], obj=instance)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"mode": "full", "added": 100, "changed": 0, "deleted": 0, "rejected": []}

    row = MemberRow("4712345", "比嘉　新", "ヒガ　アラタ", "47", "47001", "那覇市医師会", "active")
    write_members_csv(tmp_path / "diff.csv", [row], operations=["added"], deleted=["1300001"])
    with open(tmp_path / "diff.csv", "a", encoding="utf-8", newline="") as fh:
        fh.write("12,短,ミジカイ" + "," * (len(csv_header()) - 3) + ",added\r\n")
    result = runner.invoke(sync_members, ["--diff", str(tmp_path / "diff.csv"), "--json"], obj=instance)
    assert json.loads(result.output) == {
        "mode": "diff", "added": 1, "changed": 0, "deleted": 1,
        "rejected": [{"line": 4, "reason": "会員番号が7桁の数字ではありません（表計算ソフトで先頭の0が消えていないかご確認ください）。"}]}

    text = runner.invoke(sync_members, ["--diff", str(tmp_path / "diff.csv")], obj=instance)
    assert text.exit_code == 0
    assert text.output.splitlines() == [
        "差分取り込みが完了しました（文字コード: utf-8）。",
        "  追加 0 件、変更 0 件、削除 0 件、変更なし 2 件、取り込めなかった行 1 件",
        "  4行目: 会員番号が7桁の数字ではありません（表計算ソフトで先頭の0が消えていないかご確認ください）。",
    ]


def test_sync_members_errors_are_japanese_and_non_zero(tmp_path):
    instance = Instance.at(tmp_path)
    runner = CliRunner()
    neither = runner.invoke(sync_members, [], obj=instance)
    assert neither.exit_code == 2 and "--full FILE.csv と --diff FILE.csv のどちらか一方" in neither.output
    (tmp_path / "a.csv").write_text("x\n", encoding="utf-8")
    both = runner.invoke(sync_members, ["--full", str(tmp_path / "a.csv"), "--diff", str(tmp_path / "a.csv")],
                         obj=instance)
    assert both.exit_code == 2
    bad = runner.invoke(sync_members, ["--full", str(tmp_path / "a.csv")], obj=instance)
    assert bad.exit_code == 1
    assert bad.output.startswith("Error: 必須の列がありません: 会員番号、氏名、")
    assert not instance.records_db.exists()  # nothing was created for an unusable file
    missing = runner.invoke(sync_members, ["--diff", str(tmp_path / "nope.csv")], obj=instance)
    assert missing.exit_code == 1 and f"ファイルが見つかりません: {tmp_path / 'nope.csv'}" in missing.output
    nowhere = runner.invoke(sync_members, ["--full", str(tmp_path / "a.csv")], obj=None)
    assert nowhere.exit_code == 1 and "インスタンスフォルダが指定されていません" in nowhere.output
