"""`helpdesk agent add|list|remove|passwd|demo`: desk agents managed from the command line."""
from __future__ import annotations

import json
from functools import partial

import pytest
from click.testing import CliRunner

from bot.accounts.staff import SignInFailed
from bot.accounts.agents import AgentAccounts
from handlers.cli.main import cli
from tests.conftest import sign_in


def run(tmp_path, *args):
    return CliRunner().invoke(cli, ["--instance", str(tmp_path), "agent", *args])


authenticate = partial(sign_in, AgentAccounts)


def test_add_list_passwd_remove(tmp_path):
    added = run(tmp_path, "add", "yamada", "--name", "運営事務局 山田", "--password", "first-password-1")
    assert (added.exit_code, added.output) == (0, "追加しました: yamada（運営事務局 山田）\n")
    assert authenticate(tmp_path, "yamada", "first-password-1").display_name == "運営事務局 山田"
    listed = run(tmp_path, "list", "--json")
    assert listed.exit_code == 0
    assert [(a["login_id"], a["display_name"]) for a in json.loads(listed.output)] == [("yamada", "運営事務局 山田")]

    assert run(tmp_path, "passwd", "yamada", "--password", "second-password-2").exit_code == 0
    assert authenticate(tmp_path, "yamada", "second-password-2").login_id == "yamada"
    with pytest.raises(SignInFailed):
        authenticate(tmp_path, "yamada", "first-password-1")

    assert run(tmp_path, "remove", "yamada").output == "削除しました: yamada\n"
    gone = run(tmp_path, "remove", "yamada")
    assert gone.exit_code == 1 and "ログインID「yamada」の担当者は登録されていません" in gone.output


def test_refusals_are_japanese_and_non_zero(tmp_path):
    short = run(tmp_path, "add", "yamada", "--name", "山田", "--password", "short")
    assert short.exit_code == 1 and "パスワードは10文字以上にしてください。" in short.output
    bad_id = run(tmp_path, "add", "1yamada", "--name", "山田", "--password", "long-enough-123")
    assert bad_id.exit_code == 1 and "ログインIDは英小文字で始まる" in bad_id.output
