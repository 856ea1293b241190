"""Every setting of the web app, declared once: (name, default, help).

`create_app` starts from these defaults, then reads the instance's config.json, then the caller's
mapping. The docs and the serve command read the same list, so a setting cannot exist in one place only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("INSTANCE_PATH", "instance",
            "生成ファイル（索引・データベース・設定）を置くフォルダ。config.json もここから読みます"),
    Setting("SECRET_KEY", None,
            "署名用の秘密鍵。未指定なら初回に生成してインスタンスフォルダの secret_key に保存します"),
    Setting("ALLOWED_ORIGINS", [],
            "ウィジェットを埋め込めるサイトのオリジン（例: https://www.example-med.or.jp）。"
            "/widget/frame の Content-Security-Policy frame-ancestors に入ります"),
    Setting("MAX_MESSAGE_CHARS", 2000, "1件の質問の最大文字数"),
    Setting("SUGGEST_MAX_CHARS", 200,
            "入力候補（/api/suggest の q）の最大文字数。候補には文頭で足り、長い URL はサーバーが受け付けません"),
    Setting("MAX_CONTENT_LENGTH", 64 * 1024, "API が受け付けるリクエスト本文の最大バイト数"),
    Setting("RATELIMIT_ENABLED", True, "レート制限を有効にするか"),
    Setting("RATELIMIT_STORAGE_URI", "helpdesk-memory://",
            "レート制限のカウンタの保存先（flask-limiter の storage URI）。helpdesk-memory:// はワーカープロセスごとに"
            "メモリ上で数えます（handlers/ratelimit.py）"),
    Setting("MESSAGE_RATE_LIMIT", "30 per minute;300 per hour",
            "1つの会話・1つのIPアドレスあたりの質問送信の上限"),
    Setting("CONVERSATION_RATE_LIMIT", "30 per minute;500 per day", "1つのIPアドレスあたりの会話開始の上限"),
    Setting("SUGGEST_RATE_LIMIT", "120 per minute", "1つのIPアドレスあたりの入力候補取得の上限"),
    Setting("FEEDBACK_RATE_LIMIT", "60 per minute", "1つのIPアドレスあたりの評価送信の上限"),
    Setting("WIDGET_MAX_AGE", 300, "/widget.js をブラウザ・CDN がキャッシュしてよい秒数"),
    Setting("PUBLIC_URL", None,
            "利用者がアクセスする URL（例: https://helpdesk.example-med.or.jp）。https:// で始まると"
            "セッション Cookie に Secure を付けます"),
    Setting("SESSION_COOKIE_SECURE", None,
            "セッション Cookie に Secure を付けるか。未指定なら PUBLIC_URL が https:// で始まるときだけ付けます"),
    Setting("STAFF_SESSION_HOURS", 8, "職員ログインの有効時間（時間）。過ぎると再ログインが必要です"),
    Setting("SIGN_IN_RATE_LIMIT", "10 per minute;100 per day",
            "1つのIPアドレスあたりのログイン試行の上限（/login と POST /api/session の合計）"),
    Setting("SIGN_IN_ID_RATE_LIMIT", "5 per minute;30 per hour",
            "1つのログインIDあたりのログイン試行の上限（IPアドレスを変えた総当たりを防ぎます）"),
    Setting("LINK_CODE_MINUTES", 15, "会員の連携コードの有効時間（分）"),
    Setting("LINK_CODE_RATE_LIMIT", "20 per minute;200 per day", "1つのIPアドレスあたりの連携コード発行の上限"),
    Setting("NOW", None,
            "現在時刻を固定する ISO 8601 日時（例: 2026-11-25T10:00:00+09:00）。テスト・デモ用。未指定なら実時刻"),
)

DEFAULTS = {s.name: s.default for s in SETTINGS}


def defaults() -> dict:
    """A fresh copy, so that one app changing a list default cannot leak into the next."""
    return {s.name: (list(s.default) if isinstance(s.default, list) else s.default) for s in SETTINGS}
