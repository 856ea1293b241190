"""`helpdesk staff add|list` and `helpdesk demo-accounts`, driven with CliRunner on a temporary instance."""
from __future__ import annotations

import json
from functools import partial
import re
import shutil

import pytest
from click.testing import CliRunner

from bot.accounts.staff import SignInFailed, StaffAccounts
from handlers.cli.main import cli
from tests.conftest import sign_in


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


authenticate = partial(sign_in, StaffAccounts)


def test_staff_add_and_list(tmp_path):
    inst = str(tmp_path / "inst")
    r = run("--instance", inst, "staff", "add", "Yamada.Office", "--name", "千代田区医師会 事務局 山田",
            "--level", "county", "--code", "13001", input="long-enough-pw\nlong-enough-pw\n")
    assert r.exit_code == 0, r.output
    assert "追加しました: yamada.office（千代田区医師会 事務局 山田、千代田区医師会）" in r.output
    assert authenticate(tmp_path / "inst", "YAMADA.office", "long-enough-pw").association_code == "13001"
    with pytest.raises(SignInFailed):
        authenticate(tmp_path / "inst", "yamada.office", "wrong-password")

    again = run("--instance", inst, "staff", "add", "yamada.office", "--name", "別人", "--level", "prefecture",
                "--code", "13", "--password", "long-enough-pw")
    assert again.exit_code == 1 and "ログインID「yamada.office」は既に登録されています。" in again.output
    for args, message in [
        (("--level", "county", "--code", "99999", "--password", "long-enough-pw"), "郡市区等医師会のコード「99999」が見つかりません。"),
        (("--level", "prefecture", "--code", "13", "--password", "short"), "パスワードは10文字以上にしてください。"),
    ]:
        r = run("--instance", inst, "staff", "add", "other", "--name", "職員", *args)
        assert r.exit_code == 1 and message in r.output

    listed = json.loads(run("--instance", inst, "staff", "list", "--json").output)
    assert [(a["login_id"], a["level"], a["association_code"], a["association_name"], a["demo"]) for a in listed] == [
        ("yamada.office", "county", "13001", "千代田区医師会", False)]
    assert "password" not in json.dumps(listed)
    assert "yamada.office\t千代田区医師会 事務局 山田\t千代田区医師会（13001）\t最終ログイン: 2026-11-25T10:00:00+09:00" in \
        run("--instance", inst, "staff", "list").output


@pytest.mark.slow  # every demo account hashed and signed in to
def test_demo_accounts_are_printed_and_work(tmp_path, demo_db):
    inst = tmp_path / "inst"
    inst.mkdir()
    shutil.copyfile(demo_db, inst / "records.sqlite")
    r = run("--instance", str(inst), "demo-accounts")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("デモ用の職員アカウント（デモデータ（架空）専用。本番では使わないでください）:")
    logins = re.findall(r"デモ用  ログインID: (\S+)  パスワード: (\S+)  所属: (\S+)", r.output)
    assert [(login, where) for login, _pw, where in logins] == [
        ("demo-chiyoda", "千代田区医師会（郡市区等医師会）"), ("demo-tokyo", "東京都医師会（都道府県医師会）"),
        ("demo-osaka", "大阪府医師会（都道府県医師会）")]
    for login, password, _where in logins:
        assert authenticate(inst, login, password).demo is True
    # Run again, as `make run` does at every start: the same passwords, and the same hashes, so the
    # sessions signed in with them (whose fingerprint is the hash's) stay valid. The file is owner-only.
    hashes = {login: authenticate(inst, login, password).password_hash for login, password, _w in logins}
    again = dict((l, p) for l, p, _w in re.findall(r"ログインID: (\S+)  パスワード: (\S+)  所属: (\S+)",
                                                   run("--instance", str(inst), "demo-accounts").output))
    assert again == {login: password for login, password, _w in logins}
    assert {login: authenticate(inst, login, password).password_hash for login, password in again.items()} == hashes
    assert (inst / "demo-passwords.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(SignInFailed):
        authenticate(inst, "demo-tokyo", logins[0][1])
    # Without the file (a new instance folder's copy), new passwords replace the old ones.
    (inst / "demo-passwords.json").unlink()
    fresh = dict((l, p) for l, p, _w in re.findall(r"ログインID: (\S+)  パスワード: (\S+)  所属: (\S+)",
                                                   run("--instance", str(inst), "demo-accounts").output))
    assert fresh["demo-tokyo"] != again["demo-tokyo"]
    with pytest.raises(SignInFailed):
        authenticate(inst, "demo-tokyo", again["demo-tokyo"])
    assert authenticate(inst, "demo-tokyo", fresh["demo-tokyo"]).login_id == "demo-tokyo"


def test_demo_accounts_need_demo_data(tmp_path):
    r = run("--instance", str(tmp_path), "demo-accounts")
    assert r.exit_code == 1 and "先に `helpdesk demo-data` を実行してください。" in r.output


def test_demo_accounts_refuse_real_member_data(tmp_path, demo_db):
    import sqlite3

    shutil.copyfile(demo_db, tmp_path / "records.sqlite")
    with sqlite3.connect(tmp_path / "records.sqlite") as conn:
        conn.execute("DELETE FROM meta WHERE key = 'demo'")  # as after `sync-members --full`
    r = run("--instance", str(tmp_path), "demo-accounts")
    assert r.exit_code == 1 and "デモデータではないため、デモ用アカウントは作成しません。" in r.output
    assert json.loads(run("--instance", str(tmp_path), "staff", "list", "--json").output) == []
