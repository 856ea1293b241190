"""Every setting of every part (web, Telegram, desk, retention, backups), declared once.

Each setting has a name, a kind of value (helpdesk.values), a default, a Japanese help text and whether it
is secret. `load_settings` starts from the defaults, then reads the instance's `config.json` (still read,
with a note to move) and `config.toml`, then the environment (`HELPDESK_<NAME>`, and the Telegram token and
API address under their own names), then the caller's mapping, which wins (tests). Every value is checked
against its kind on the way in, so a wrong value stops start-up with one Japanese line naming the setting
and what is allowed. The CLI's help, `helpdesk config`, `docs/settings.md` and the web app all read this
list, so a setting cannot exist in one place only.
"""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from helpdesk.values import (Boolean, Choice, ClockTime, ColumnMap, Folder, Hours, Integer, Kind, Number, Origins,
                             RateLimit, Text, Timestamp, Unfit, Url, Weekdays)


@dataclass(frozen=True)
class Setting:
    name: str
    kind: Kind
    default: Any
    help: str
    group: str
    secret: bool = False
    #: The environment variable; HELPDESK_<NAME> unless the name itself is a contract.
    env: str | None = None

    @property
    def env_name(self) -> str:
        return self.env or f"HELPDESK_{self.name}"


GROUPS = {
    "general": "全体",
    "web": "Web チャット・API・職員ログイン",
    "serve": "サーバー（helpdesk serve）",
    "telegram": "Telegram ボット",
    "desk": "運営事務局",
    "health": "稼働状況（/readyz）",
    "retention": "保存期間（helpdesk purge）",
    "backup": "バックアップ",
    "imports": "会員データの取り込み（helpdesk sync-*）",
}


def _import_headers() -> dict[str, set[str]]:
    from records.kinds import headers

    return headers()

_TELEGRAM_SECRET = r"[A-Za-z0-9_-]{1,256}"
_MONTH_DAY = r"\d{1,2}-\d{1,2}"
_CLOSED_DAYS = rf"(\s*{_MONTH_DAY}(\.\.{_MONTH_DAY})?\s*(,\s*{_MONTH_DAY}(\.\.{_MONTH_DAY})?\s*)*)?"


def _s(group: str, name: str, kind: Kind, default: Any, help: str, **extra) -> Setting:
    return Setting(name, kind, default, help, group, **extra)


SETTINGS: tuple[Setting, ...] = (
    _s("general", "INSTANCE_PATH", Folder(), "instance",
       "生成ファイル（索引・データベース・設定）を置くフォルダ。config.toml もここから読みます"),
    _s("general", "SECRET_KEY", Text(), None,
       "署名用の秘密鍵。未指定なら初回に生成してインスタンスフォルダの secret_key に保存します", secret=True),
    _s("general", "NOW", Timestamp(), None,
       "現在時刻を固定する ISO 8601 日時（例: 2026-11-25T10:00:00+09:00）。テスト・デモ用。未指定なら実時刻"),
    _s("general", "PUBLIC_URL", Url(), None,
       "利用者がアクセスする URL（例: https://helpdesk.example-med.or.jp）。https:// で始まると"
       "セッション Cookie に Secure を付けます"),
    _s("general", "VECTORS_PATH", Folder(), None,
       "検索用の単語ベクトル（helpdesk fetch-vectors が取得）を置くフォルダ。未指定なら"
       "~/.local/share/mamis-helpdesk/vectors（同じユーザーのインスタンスで共有）"),
    _s("general", "LOG_LEVEL", Choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO",
       "ログの詳しさ（ログは1行1件で標準エラー出力へ）"),
    _s("general", "LOG_FORMAT", Choice("json", "text"), "json",
       "ログの形式。json は1行1件の JSON（journald・ログ収集向け）、text は端末で読む1行（時刻は日本時間。"
       "make run はこちら）"),
    _s("web", "ALLOWED_ORIGINS", Origins(), [],
       "ウィジェットを埋め込めるサイトのオリジン（例: https://www.example-med.or.jp）。"
       "/widget/frame の Content-Security-Policy frame-ancestors に入ります"),
    _s("web", "MAX_MESSAGE_CHARS", Integer(1, 100_000), 2000, "1件の質問の最大文字数"),
    _s("web", "SUGGEST_MAX_CHARS", Integer(1, 2000), 200,
       "入力候補（/api/suggest の q）の最大文字数。候補には文頭で足り、長い URL はサーバーが受け付けません"),
    _s("web", "MAX_CONTENT_LENGTH", Integer(1024, 16 * 1024 * 1024), 64 * 1024,
       "API が受け付けるリクエスト本文の最大バイト数"),
    _s("web", "RATELIMIT_ENABLED", Boolean(), True, "レート制限を有効にするか"),
    _s("web", "RATELIMIT_STORAGE_URI", Text(r"[a-z][a-z0-9+.-]*://\S*", "flask-limiter の storage URI（例: "
                                            "helpdesk-sqlite://, redis://localhost:6379）"), "helpdesk-sqlite://",
       "レート制限のカウンタの保存先（flask-limiter の storage URI）。helpdesk-sqlite:// はインスタンスフォルダの"
       "ratelimit.sqlite で全ワーカープロセスが共有して数えます。helpdesk-memory:// はプロセスごとのメモリです"),
    _s("web", "TRUSTED_PROXIES", Integer(0, 5), 0,
       "前段のリバースプロキシ（nginx など）の段数。1 以上なら X-Forwarded-For / -Proto / -Host をその段数だけ信頼し、"
       "レート制限と記録は利用者の IP アドレスで数えます。プロキシなしで公開するときは 0 のまま"),
    _s("web", "MESSAGE_RATE_LIMIT", RateLimit(), "30 per minute;300 per hour",
       "1つの会話・1つのIPアドレスあたりの質問送信の上限"),
    _s("web", "CONVERSATION_RATE_LIMIT", RateLimit(), "30 per minute;500 per day",
       "1つのIPアドレスあたりの会話開始の上限"),
    _s("web", "SUGGEST_RATE_LIMIT", RateLimit(), "120 per minute", "1つのIPアドレスあたりの入力候補取得の上限"),
    _s("web", "FEEDBACK_RATE_LIMIT", RateLimit(), "60 per minute", "1つのIPアドレスあたりの評価送信の上限"),
    _s("web", "WIDGET_MAX_AGE", Integer(0, 86_400 * 365), 300, "/widget.js をブラウザ・CDN がキャッシュしてよい秒数"),
    _s("web", "SESSION_COOKIE_SECURE", Boolean(), None,
       "セッション Cookie に Secure を付けるか。未指定なら PUBLIC_URL が https:// で始まるときだけ付けます"),
    _s("web", "STAFF_SESSION_HOURS", Number(0), 8, "職員ログインの有効時間（時間）。過ぎると再ログインが必要です"),
    _s("web", "STAFF_SESSION_MAX_HOURS", Number(0), 12,
       "職員ログインの最長時間（時間）。使い続けていても、ログインからこの時間が過ぎると再ログインが必要です"),
    _s("web", "SIGN_IN_RATE_LIMIT", RateLimit(), "10 per minute;100 per day",
       "1つのIPアドレスあたりのログイン試行の上限（/login と POST /api/session の合計）"),
    _s("web", "SIGN_IN_ID_RATE_LIMIT", RateLimit(), "5 per minute;30 per hour",
       "1つのログインIDあたりのログイン試行の上限（IPアドレスを変えた総当たりを防ぎます）"),
    _s("web", "LINK_CODE_MINUTES", Integer(1, 24 * 60), 15, "会員の連携コードの有効時間（分）"),
    _s("web", "LINK_CODE_RATE_LIMIT", RateLimit(), "20 per minute;200 per day",
       "1つのIPアドレスあたりの連携コード発行の上限"),
    _s("serve", "HOST", Text(r"\S+", "待ち受けるアドレス（例: 127.0.0.1）"), "127.0.0.1",
       "待ち受けるアドレス（既定はこのマシンからだけ）。外部に公開するときも HTTPS のリバースプロキシ"
       "（nginx など）を前に置き、そこから転送してください（docs/security.md）"),
    _s("serve", "PORT", Integer(0, 65535), 8000, "待ち受けるポート番号"),
    _s("serve", "WORKERS", Integer(1, 64), 2, "gunicorn のワーカープロセス数（目安は CPU コア数。waitress では使いません）"),
    _s("serve", "THREADS", Integer(1, 256), 4, "1プロセスあたりの処理スレッド数（要求を受け取り終えてから割り当てます）"),
    _s("serve", "SERVER", Choice("gunicorn", "waitress"), "gunicorn", "使う WSGI サーバー"),
    _s("serve", "LIVE_WAITS", Integer(0, 1000), 100,
       "1プロセスあたり同時に待たせておける返信待ち（?wait= のロングポーリング）の数。処理スレッドとは別にこの数の"
       "スレッドを用意し、埋まっているときはすぐに答えます（0 で待たせません）"),
    _s("telegram", "TELEGRAM_BOT_TOKEN", Text(r"[0-9]+:[A-Za-z0-9_-]+", "BotFather が発行したトークン"
                                              "（123456:ABC-… の形）"), None,
       "Telegram ボットのトークン（BotFather が発行）。未指定なら Telegram ボットは動きません",
       secret=True, env="TELEGRAM_BOT_TOKEN"),
    _s("telegram", "TELEGRAM_API_URL", Url(), "https://api.telegram.org",
       "Telegram Bot API のアドレス（テストでは手元の模擬サーバーを指します）", env="TELEGRAM_API_URL"),
    _s("telegram", "TELEGRAM_WEBHOOK_URL", Url(), None,
       "Webhook で受け取るときの公開 URL（https://…）。未指定ならロングポーリングで受け取ります"),
    _s("telegram", "TELEGRAM_WEBHOOK_SECRET", Text(_TELEGRAM_SECRET, "英数字・_・- の1〜256文字"), None,
       "Webhook の X-Telegram-Bot-Api-Secret-Token に使う秘密の文字列", secret=True),
    _s("telegram", "TELEGRAM_RATE_LIMIT", RateLimit(), "20 per minute;200 per hour",
       "1つのチャットあたりのメッセージの上限"),
    _s("telegram", "TELEGRAM_LINK_RATE_LIMIT", RateLimit(), "5 per 15 minutes",
       "1つのチャットあたりの連携コード入力の上限（総当たりを防ぎます）"),
    _s("telegram", "TELEGRAM_CONCURRENT_UPDATES", Integer(1, 1024), 64, "同時に処理する Telegram の更新の数"),
    _s("telegram", "TELEGRAM_WORKERS", Integer(0, 64), None,
       "質問に答える作業プロセスの数。未指定なら CPU の数 − 1（最低 1）。0 はボットのプロセス内のスレッドで答えます"),
    _s("telegram", "TELEGRAM_DRAIN_INTERVAL", Number(0), 0.5, "送信待ちのメッセージ（outbox）を確認する間隔（秒）"),
    _s("desk", "DESK_DAYS", Weekdays(), ["mon", "tue", "wed", "thu", "fri"],
       "運営事務局の受付曜日（日本時間）。祝日の扱いは DESK_CLOSED_ON_HOLIDAYS"),
    _s("desk", "DESK_HOURS", Hours(), "09:00-17:00", "運営事務局の受付時間（日本時間）"),
    _s("desk", "DESK_CLOSED_ON_HOLIDAYS", Boolean(), True, "日本の祝日（jpholiday）を受付日から除くか"),
    _s("desk", "DESK_PHONE", Text(r"0\d{1,4}-\d{1,4}-\d{3,4}", "「0120-110-030」の形のハイフンつき電話番号"),
       "0120-110-030", "運営事務局の電話番号。ボット・チャット・Web ページの案内と電話リンクに使います"
       "（0120・0800 で始まればフリーダイヤルと案内）"),
    _s("desk", "DESK_CLOSED_DAYS", Text(_CLOSED_DAYS, "「12-29..01-03」の形の月-日または期間（カンマ区切り）"),
       "12-29..01-03", "毎年の休業日（月-日）。期間は「..」でつなぎ、年をまたいでも構いません"),
    _s("desk", "DESK_SESSION_MINUTES", Integer(5, 24 * 60), 480,
       "運営事務局コンソール（/desk）のログインの有効時間（分）。1回の勤務の長さが目安です"),
    _s("retention", "RETENTION_CONVERSATION_DAYS", Integer(1), 365, "会話とメッセージを保存する日数"),
    _s("retention", "RETENTION_TICKET_DAYS", Integer(1), 1825, "運営事務局への引き継ぎ（チケット）を保存する日数"),
    _s("retention", "RETENTION_UNANSWERED_DAYS", Integer(1), 365, "答えられなかった質問を保存する日数"),
    _s("retention", "RETENTION_ACCESS_LOG_DAYS", Integer(1), 1825, "会員データの閲覧記録（アクセスログ）を保存する日数"),
    _s("retention", "RETENTION_LINK_CODE_DAYS", Integer(1), 30, "使用済み・期限切れの連携コードを保存する日数"),
    _s("health", "READY_MEMBER_SYNC_MAX_HOURS", Number(0), 48,
       "会員データの最後の取り込みからこの時間（時間）を過ぎると /readyz が「一部低下」（degraded）と報告します"),
    _s("health", "READY_TELEGRAM_MAX_SECONDS", Number(0), 180,
       "Telegram の受信が最後に成功してからこの秒数を過ぎると /readyz が「一部低下」（degraded）と報告します（Telegram 有効時）"),
    _s("health", "READY_OUTBOX_MAX_MINUTES", Number(0), 15,
       "未配信のメッセージ（outbox）の最も古いものがこの分数を過ぎると /readyz が「一部低下」（degraded）と報告します"),
    _s("backup", "BACKUP_DIR", Folder(), None, "毎日のバックアップの保存先フォルダ。未指定なら自動バックアップはしません"),
    _s("backup", "BACKUP_DAILY_AT", ClockTime(), "03:00", "毎日のバックアップを始める時刻（日本時間）"),
    _s("backup", "BACKUP_KEEP", Integer(1, 3650), 14, "残しておく毎日のバックアップの数（古いものから削除）"),
    _s("imports", "IMPORT_COLUMNS", ColumnMap(_import_headers), {},
       "受け取ったファイルの列名を本来の列名に読み替える表（種類ごと）。config.toml では "
       "[IMPORT_COLUMNS.institutions] の下に \"受け取った列名\" = \"本来の列名\" と書きます（docs/records.md）"),
    _s("imports", "READY_IMPORT_MAX_DAYS", Number(0), 45,
       "医療機関・申請・報告の最後の取り込みからこの日数を過ぎると /readyz がその部分を degraded と報告します"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
DEFAULTS = {s.name: s.default for s in SETTINGS}

DEFAULT_SOURCE = "既定値"
CALLER_SOURCE = "呼び出し元"
JSON_NOTE = ("{path} は今後読まれなくなります。同じ内容を config.toml に移してください"
             "（`helpdesk config --toml` で TOML の形で出力できます）。")


class SettingError(ValueError):
    """A setting that cannot be used; the message is the one Japanese line shown at start-up."""

    def __init__(self, message: str, name: str | None = None):
        super().__init__(message)
        self.name = name


def defaults() -> dict:
    """A fresh copy, so that one app changing a list default cannot leak into the next."""
    return {s.name: (type(s.default)(s.default) if isinstance(s.default, (list, dict)) else s.default)
            for s in SETTINGS}


def parse_value(setting: Setting, value: Any, source: str) -> Any:
    """The value checked against the setting's kind; None (or empty text) means "not set"."""
    if value is None or (isinstance(value, str) and not value.strip() and setting.default is None):
        return None
    try:
        return setting.kind.parse(value)
    except Unfit as fault:
        raise SettingError(f"設定 {setting.name} の値が正しくありません（{source}）。{fault}", setting.name) from None
    except (ValueError, TypeError, OverflowError):
        allowed = setting.kind.allowed
        space = " " if allowed[-1].isascii() else ""  # 「true または false を」, 「整数を」
        raise SettingError(f"設定 {setting.name} の値が正しくありません（{source}）。"
                           f"{allowed}{space}を指定してください。", setting.name) from None


class Settings(Mapping):
    """The effective settings: values, where each came from, and notes for the operator.

    Keys the caller passed that are not declared settings (Flask's TESTING, for example) are kept as
    they are, unchecked, so that a test can still configure the framework.
    """

    def __init__(self, values: dict, sources: dict, notes: list[str], extra: dict):
        self.values, self.sources, self.notes, self.extra = values, sources, notes, extra

    def __getitem__(self, name: str) -> Any:
        return self.values[name] if name in self.values else self.extra[name]

    def __iter__(self) -> Iterator[str]:
        yield from self.values
        yield from self.extra

    def __len__(self) -> int:
        return len(self.values) + len(self.extra)

    @property
    def instance_path(self) -> Path:
        return Path(self.values["INSTANCE_PATH"])


def _read_file(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        reason = " ".join(str(e).split())
        raise SettingError(f"設定ファイル {path} を読めません: {reason}") from None
    if not isinstance(data, dict):
        raise SettingError(f"設定ファイル {path} には「名前 = 値」の組（JSON ではオブジェクト）を書いてください。")
    return data


def _unknown(name: str, source: str) -> SettingError:
    return SettingError(f"設定 {name} はありません（{source}）。使える設定は `helpdesk config` と "
                        "docs/settings.md にあります。", name)


def load_settings(instance_path: Path | str | None = None, overrides: Mapping | None = None, *,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then config.json, then config.toml, then the environment, then `overrides`.

    `instance_path` (or INSTANCE_PATH in `overrides`) names the folder the files are read from.
    """
    overrides = dict(overrides or {})
    environ = os.environ if environ is None else environ
    values, sources = defaults(), {s.name: DEFAULT_SOURCE for s in SETTINGS}
    folder = overrides.get("INSTANCE_PATH") or instance_path or environ.get(BY_NAME["INSTANCE_PATH"].env_name)
    folder = Path(folder or values["INSTANCE_PATH"]).resolve()
    notes: list[str] = []

    def apply(name: str, value: Any, source: str) -> None:
        values[name], sources[name] = parse_value(BY_NAME[name], value, source), source

    for path in (folder / "config.json", folder / "config.toml"):
        data = _read_file(path)
        if data and path.suffix == ".json":
            notes.append(JSON_NOTE.format(path=path))
        for name, value in data.items():
            if name not in BY_NAME or name == "INSTANCE_PATH":
                raise _unknown(name, path.name)
            apply(name, value, path.name)
    for setting in SETTINGS:
        if setting.env_name in environ and setting.name != "INSTANCE_PATH":
            apply(setting.name, environ[setting.env_name], f"環境変数 {setting.env_name}")
    extra = {}
    for name, value in overrides.items():
        if name in BY_NAME:
            apply(name, value, CALLER_SOURCE)
        else:
            extra[name] = value
    values["INSTANCE_PATH"] = str(folder)
    return Settings(values, sources, notes, extra)


# -- showing the settings ---------------------------------------------------------------------------

MASK = "********"


def shown(setting: Setting, value: Any) -> str:
    """A value as `helpdesk config` prints it: secrets masked, "not set" in words."""
    if value is None:
        return "（未設定）"
    return MASK if setting.secret else setting.kind.text(value)


def effective_lines(settings: Settings) -> list[str]:
    """`NAME = value  # source`, group by group, secrets masked."""
    lines = []
    for group, title in GROUPS.items():
        lines.append(f"# {title}")
        for s in (s for s in SETTINGS if s.group == group):
            lines.append(f"{s.name} = {shown(s, settings.values[s.name])}  # {settings.sources[s.name]}")
        lines.append("")
    return lines[:-1]


def to_toml(settings: Settings) -> str:
    """The values that came from the config files, as config.toml text (for moving off config.json).

    A secret is named in a comment but never printed (the output lands in terminals, scrollback and
    tickets): its value is moved by hand, or better, given as an environment variable."""
    lines, tables = [], []
    for s in SETTINGS:
        if settings.sources[s.name] in ("config.json", "config.toml") and settings.values[s.name] is not None:
            value = settings.values[s.name]
            if s.secret:
                lines.append(f"# {s.name} = {MASK}  # 秘密の値は表示しません。元の設定ファイルから直接移してください")
            elif isinstance(value, dict):  # a table of tables (IMPORT_COLUMNS): after the plain keys, as TOML wants
                for sub, pairs in value.items():
                    tables += ["", f"[{s.name}.{sub}]"] + [f"{json.dumps(k, ensure_ascii=False)} = "
                                                           f"{json.dumps(v, ensure_ascii=False)}" for k, v in pairs.items()]
            else:
                lines.append(f"{s.name} = {json.dumps(value, ensure_ascii=False)}")
    lines += tables
    return "\n".join(lines) + ("\n" if lines else "")


def markdown() -> str:
    """docs/settings.md, generated from SETTINGS (`helpdesk config --markdown`)."""
    out = [
        "# Settings",
        "",
        "<!-- Generated by `helpdesk config --markdown` from helpdesk/settings.py; do not edit by hand. -->",
        "",
        "Each setting is read, in this order (later wins): its default, `<instance>/config.json` (still",
        "read; move it to `config.toml`), `<instance>/config.toml`, the environment variable named below,",
        "and the caller's mapping (tests). A wrong value stops start-up with one line naming the setting",
        "and what is allowed. `helpdesk config` prints the effective values (secrets masked) and where",
        "each came from.",
        "",
        "```toml",
        "# <instance>/config.toml",
        'PUBLIC_URL = "https://helpdesk.example-med.or.jp"',
        'ALLOWED_ORIGINS = ["https://www.example-med.or.jp"]',
        'DESK_HOURS = "09:00-17:00"',
        "```",
    ]
    for group, title in GROUPS.items():
        out += ["", f"## {title}", "", "| name | default | environment | meaning | allowed |", "|---|---|---|---|---|"]
        for s in (s for s in SETTINGS if s.group == group):
            default = "（なし）" if s.default is None else f"`{s.kind.text(s.default)}`"
            name = f"`{s.name}`" + ("（秘密）" if s.secret else "")
            cells = [name, default, f"`{s.env_name}`", s.help, s.kind.allowed]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"
