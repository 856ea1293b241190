"""Settings: one declared list, read from config.json < config.toml < environment < caller, checked
against its kinds with one Japanese line per mistake; `helpdesk config` shows values (secrets masked)
and their sources; docs/settings.md is generated from the list and must not go stale."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpdesk.settings import SETTINGS, SettingError, load_settings, markdown

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:ABCdef_secret-token"


def write(folder: Path, json_values: dict | None = None, toml_text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if json_values is not None:
        (folder / "config.json").write_text(json.dumps(json_values), encoding="utf-8")
    if toml_text is not None:
        (folder / "config.toml").write_text(toml_text, encoding="utf-8")
    return folder


def test_each_source_overrides_the_one_before(tmp_path):
    folder = write(tmp_path, {"MAX_MESSAGE_CHARS": 500, "WIDGET_MAX_AGE": 60, "SUGGEST_MAX_CHARS": 50,
                              "LINK_CODE_MINUTES": 5},
                   'MAX_MESSAGE_CHARS = 600\nWIDGET_MAX_AGE = 70\nSUGGEST_MAX_CHARS = 80\n'
                   'ALLOWED_ORIGINS = ["https://a.example.jp"]\nDESK_DAYS = ["mon", "wed"]\n')
    environ = {"HELPDESK_WIDGET_MAX_AGE": "90", "HELPDESK_SUGGEST_MAX_CHARS": "100", "TELEGRAM_BOT_TOKEN": TOKEN,
               "TELEGRAM_API_URL": "http://127.0.0.1:9000", "HELPDESK_RATELIMIT_ENABLED": "false",
               "HELPDESK_TELEGRAM_BOT_TOKEN": "ignored:under-this-name"}
    s = load_settings(folder, {"SUGGEST_MAX_CHARS": "120", "TESTING": True}, environ=environ)
    got = {name: (s[name], s.sources[name]) for name in
           ("LINK_CODE_MINUTES", "MAX_MESSAGE_CHARS", "WIDGET_MAX_AGE", "SUGGEST_MAX_CHARS", "ALLOWED_ORIGINS",
            "DESK_DAYS", "TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "RATELIMIT_ENABLED", "STAFF_SESSION_HOURS")}
    assert got == {
        "LINK_CODE_MINUTES": (5, "config.json"),
        "MAX_MESSAGE_CHARS": (600, "config.toml"),
        "WIDGET_MAX_AGE": (90, "環境変数 HELPDESK_WIDGET_MAX_AGE"),
        "SUGGEST_MAX_CHARS": (120, "呼び出し元"),
        "ALLOWED_ORIGINS": (["https://a.example.jp"], "config.toml"),
        "DESK_DAYS": (["mon", "wed"], "config.toml"),
        "TELEGRAM_BOT_TOKEN": (TOKEN, "環境変数 TELEGRAM_BOT_TOKEN"),
        "TELEGRAM_API_URL": ("http://127.0.0.1:9000", "環境変数 TELEGRAM_API_URL"),
        "RATELIMIT_ENABLED": (False, "環境変数 HELPDESK_RATELIMIT_ENABLED"),
        "STAFF_SESSION_HOURS": (8, "既定値"),
    }
    assert s["TESTING"] is True and s["INSTANCE_PATH"] == str(folder.resolve())
    assert s.notes == [f"{folder.resolve() / 'config.json'} は今後読まれなくなります。同じ内容を config.toml に移してください"
                       "（`helpdesk config --toml` で TOML の形で出力できます）。"]


def test_defaults_apply_without_any_file(tmp_path):
    s = load_settings(tmp_path, environ={})
    assert {name: s[name] for name in ("TELEGRAM_API_URL", "DESK_HOURS", "DESK_DAYS", "DESK_CLOSED_ON_HOLIDAYS")} == {
        "TELEGRAM_API_URL": "https://api.telegram.org", "DESK_HOURS": "09:00-17:00",
        "DESK_DAYS": ["mon", "tue", "wed", "thu", "fri"], "DESK_CLOSED_ON_HOLIDAYS": True}
    assert set(s.sources.values()) == {"既定値"} and s.notes == []


@pytest.mark.parametrize("where, name, value, message", [
    ("caller", "MAX_MESSAGE_CHARS", "many",
     "設定 MAX_MESSAGE_CHARS の値が正しくありません（呼び出し元）。1〜100000 の整数を指定してください。"),
    ("env", "MAX_MESSAGE_CHARS", "0",
     "設定 MAX_MESSAGE_CHARS の値が正しくありません（環境変数 HELPDESK_MAX_MESSAGE_CHARS）。1〜100000 の整数を指定してください。"),
    ("toml", "RATELIMIT_ENABLED", '"sometimes"',
     "設定 RATELIMIT_ENABLED の値が正しくありません（config.toml）。true または false を指定してください。"),
    ("toml", "DESK_HOURS", '"17:00-09:00"',
     "設定 DESK_HOURS の値が正しくありません（config.toml）。「09:00-17:00」の形の時間帯（開始が終了より前）を指定してください。"),
    ("toml", "NOW", '"2026-11-25T10:00:00"',
     "設定 NOW の値が正しくありません（config.toml）。UTC からの時差つきの ISO 8601 日時（例: 2026-11-25T10:00:00+09:00）を指定してください。"),
    ("env", "TELEGRAM_BOT_TOKEN", "not a token",
     "設定 TELEGRAM_BOT_TOKEN の値が正しくありません（環境変数 TELEGRAM_BOT_TOKEN）。BotFather が発行したトークン（123456:ABC-… の形）を指定してください。"),
    ("toml", "NO_SUCH_SETTING", "1",
     "設定 NO_SUCH_SETTING はありません（config.toml）。使える設定は `helpdesk config` と docs/settings.md にあります。"),
])
def test_a_wrong_value_is_one_japanese_line_naming_the_setting(tmp_path, where, name, value, message):
    folder = write(tmp_path, toml_text=f"{name} = {value}\n" if where == "toml" else None)
    environ = {(name if name.startswith("TELEGRAM_BOT") else f"HELPDESK_{name}"): value} if where == "env" else {}
    with pytest.raises(SettingError) as info:
        load_settings(folder, {name: value} if where == "caller" else None, environ=environ)
    assert str(info.value) == message and info.value.name == name


def test_a_broken_config_file_is_one_line(tmp_path):
    folder = write(tmp_path, toml_text="MAX_MESSAGE_CHARS = = 3\n")
    with pytest.raises(SettingError) as info:
        load_settings(folder, environ={})
    assert str(info.value).startswith(f"設定ファイル {folder / 'config.toml'} を読めません: ")
    assert "\n" not in str(info.value)


def test_create_app_stops_on_a_wrong_setting(tmp_path):
    from handlers.web.app import create_app

    write(tmp_path, toml_text='ALLOWED_ORIGINS = ["https://ok.example.jp/path"]\n')
    with pytest.raises(SettingError, match="^設定 ALLOWED_ORIGINS の値が正しくありません（config.toml）。"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_helpdesk_config_masks_secrets_and_names_sources(tmp_path):
    from handlers.cli.main import cli

    write(tmp_path, {"WIDGET_MAX_AGE": 60}, 'SECRET_KEY = "s3cret-key-value"\nPUBLIC_URL = "https://hd.example.jp"\n')
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "HELPDESK_MAX_MESSAGE_CHARS": "900"}
    result = CliRunner().invoke(cli, ["--instance", str(tmp_path), "config"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for line in ('SECRET_KEY = ********  # config.toml', "TELEGRAM_BOT_TOKEN = ********  # 環境変数 TELEGRAM_BOT_TOKEN",
                 'PUBLIC_URL = "https://hd.example.jp"  # config.toml', "WIDGET_MAX_AGE = 60  # config.json",
                 "MAX_MESSAGE_CHARS = 900  # 環境変数 HELPDESK_MAX_MESSAGE_CHARS",
                 "TELEGRAM_WEBHOOK_SECRET = （未設定）  # 既定値", 'DESK_HOURS = "09:00-17:00"  # 既定値'):
        assert line in lines
    assert "s3cret" not in result.output and TOKEN not in result.output
    assert sum(line.startswith(tuple(s.name + " = " for s in SETTINGS)) for line in lines) == len(SETTINGS)
    assert "config.toml に移してください" in result.stderr
    moved = CliRunner().invoke(cli, ["--instance", str(tmp_path), "config", "--toml"], env={})
    # Secrets are masked here too (the command's help says so): named in a comment, never printed.
    assert moved.stdout == ('# SECRET_KEY = ********  # 秘密の値は表示しません。元の設定ファイルから直接移してください\n'
                            'PUBLIC_URL = "https://hd.example.jp"\nWIDGET_MAX_AGE = 60\n')
    assert tomllib.loads(moved.stdout) == {"PUBLIC_URL": "https://hd.example.jp", "WIDGET_MAX_AGE": 60}


def test_helpdesk_config_toml_prints_no_secret(tmp_path):
    from handlers.cli.main import cli

    write(tmp_path, {"TELEGRAM_WEBHOOK_SECRET": "hook-s3cret-value"}, 'SECRET_KEY = "s3cret-key-value"\n')
    moved = CliRunner().invoke(cli, ["--instance", str(tmp_path), "config", "--toml"], env={})
    assert moved.exit_code == 0, moved.output
    assert "s3cret" not in moved.output
    assert [line.split(" = ")[0] for line in moved.stdout.splitlines()] == ["# SECRET_KEY", "# TELEGRAM_WEBHOOK_SECRET"]


def test_helpdesk_config_refuses_a_wrong_value_in_one_line(tmp_path):
    from handlers.cli.main import cli

    write(tmp_path, toml_text="PORT = 70000\n")
    result = CliRunner().invoke(cli, ["--instance", str(tmp_path), "config"], env={})
    assert result.exit_code == 1
    assert result.output == "Error: 設定 PORT の値が正しくありません（config.toml）。0〜65535 の整数を指定してください。\n"


def test_docs_settings_md_is_generated_from_the_list():
    """Regenerate with `helpdesk config --markdown > docs/settings.md`."""
    assert (ROOT / "docs" / "settings.md").read_text(encoding="utf-8") == markdown()
    for s in SETTINGS:
        assert s.help and s.kind.allowed, s.name


def test_cli_help_comes_from_the_list():
    from handlers.cli.main import cli
    from helpdesk.settings import BY_NAME

    result = CliRunner().invoke(cli, ["--help"], terminal_width=400)
    assert BY_NAME["INSTANCE_PATH"].help in " ".join(result.output.split())
    assert "HELPDESK_INSTANCE_PATH" in result.output


def test_serve_options_take_default_and_help_from_the_list():
    from handlers.cli.main import cli
    from helpdesk.settings import BY_NAME

    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=400)
    text = " ".join(result.output.split())
    for name in ("HOST", "PORT", "WORKERS", "THREADS", "SERVER"):
        setting = BY_NAME[name]
        assert " ".join(setting.help.split()) in text and f"env var: HELPDESK_{name}; default: {setting.default}" in text


@pytest.mark.server
def test_serve_listens_where_config_toml_says_unless_the_command_line_says_otherwise(tmp_path):
    """HOST, PORT, SERVER and THREADS are options of `helpdesk serve` and settings alike: the command line
    wins, and without it config.toml is read like for any other setting."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from tests.conftest import build_instance, free_port, server_env

    instance = build_instance(tmp_path / "instance")
    port, other = free_port(), free_port()
    (instance.path / "config.toml").write_text(f'HOST = "127.0.0.1"\nPORT = {port}\nSERVER = "waitress"\n'
                                               "THREADS = 2\n", encoding="utf-8")

    def serve(*args) -> str:
        proc = subprocess.Popen([sys.executable, "-m", "handlers.server.main", "--instance", str(instance.path),
                                 "serve", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=server_env(), start_new_session=True, text=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                for p in (port, other):
                    try:
                        if httpx.get(f"http://127.0.0.1:{p}/api/health", timeout=1).status_code == 200:
                            return str(p)
                    except httpx.TransportError:
                        pass
                time.sleep(0.1)
            return "none"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)

    assert serve() == str(port)
    assert serve("--port", str(other)) == str(other)
