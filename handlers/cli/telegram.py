"""`helpdesk telegram`: run the bot (long polling, or `--webhook`), or `--check` why it is silent.

A missing or rejected token, or a Bot API server that cannot be reached, is one Japanese line on
stderr and exit status 1, never a traceback.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import click
from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError

from handlers.telegram.app import run
from handlers.telegram.config import TelegramConfig, use_timedelta_durations
from helpdesk.settings import SettingError, load_settings

NO_TOKEN = ("Telegram ボットのトークンが設定されていません。BotFather が発行したトークンを環境変数 "
            "TELEGRAM_BOT_TOKEN に設定してから起動してください。")
REJECTED = "Telegram がボットのトークンを受け付けませんでした。環境変数 TELEGRAM_BOT_TOKEN を確認してください。"
UNREACHABLE = "Telegram Bot API（{url}）に接続できません。ネットワークと TELEGRAM_API_URL を確認してください。"
NO_WEBHOOK_URL = ("--webhook には公開 URL の設定が必要です。環境変数 HELPDESK_TELEGRAM_WEBHOOK_URL"
                  "（または config.toml の TELEGRAM_WEBHOOK_URL）に https://…/telegram を設定してください。")
#: Where `--webhook` keeps the secret token it made, when TELEGRAM_WEBHOOK_SECRET is not set.
WEBHOOK_SECRET_FILE = "telegram_webhook_secret"


def fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


@click.command("telegram")
@click.option("--check", is_flag=True, help="ボット名・Webhook の状態・待機中の更新・最後のエラーを表示して終了します")
@click.option("--webhook", is_flag=True,
              help="ロングポーリングの代わりに Webhook で受け取ります（TELEGRAM_WEBHOOK_URL と secret_token を使います。"
                   "TELEGRAM_WEBHOOK_SECRET が未設定ならインスタンスのフォルダに作って使います）")
@click.option("--listen", default="127.0.0.1", show_default=True, help="Webhook を待ち受けるアドレス")
@click.option("--port", default=8443, show_default=True, type=click.IntRange(1, 65535),
              help="Webhook を待ち受けるポート")
@click.pass_obj
def telegram(instance, check: bool, webhook: bool, listen: str, port: int) -> None:
    """Telegram ボットを起動します（TELEGRAM_BOT_TOKEN が必要です）。

    既定ではロングポーリングで更新を受け取ります。--webhook では python-telegram-bot の Webhook サーバーが
    --listen:--port の /telegram で待ち受け、secret_token のない更新は拒否します。
    """
    try:
        settings = load_settings(instance.path)
    except SettingError as e:
        fail(str(e))
    config = TelegramConfig.from_settings(settings)
    if not config.token:
        fail(NO_TOKEN)
    if check:
        return asyncio.run(check_bot(config))
    if webhook and not config.webhook_url:
        fail(NO_WEBHOOK_URL)
    if webhook and not config.webhook_secret:
        config = replace(config, webhook_secret=webhook_secret(instance.path))
    asyncio.run(reachable(config))  # before the library starts, which would log a traceback instead
    from handlers.web.logs import configure as json_logs
    from handlers.web.metrics import use_instance_dir

    use_instance_dir(instance.path)  # counted with the web workers' metrics (before prometheus is imported)
    json_logs(settings["LOG_LEVEL"], settings["LOG_FORMAT"])  # as the web server's
    # httpx logs every request URL at INFO, and the URL carries the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from helpdesk.services import build_services

    services = build_services(instance.path, settings)
    try:
        run(config, services, webhook=webhook, listen=listen, port=port)
    except InvalidToken:
        fail(REJECTED)
    except NetworkError:
        fail(UNREACHABLE.format(url=config.api_url))
    finally:
        services.close()


def webhook_secret(instance_path) -> str:
    """The instance's webhook secret token, made once (mode 0600) and kept, so that a webhook is never
    set without one: without it anyone who can reach the webhook could post forged updates."""
    path = Path(instance_path) / WEBHOOK_SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32))  # 43 characters of A-Z a-z 0-9 _ -: what Telegram accepts
    return path.read_text().strip()


async def reachable(config: TelegramConfig, then=None):
    """Ask Telegram who we are (getMe), and `then(bot)` if given; a refusal ends the command with one line."""
    use_timedelta_durations()
    bot = Bot(config.token, base_url=config.base_url, base_file_url=config.base_file_url)
    try:
        async with bot:
            return bot, (await then(bot) if then else None)
    except InvalidToken:
        fail(REJECTED)
    except (NetworkError, TelegramError):
        fail(UNREACHABLE.format(url=config.api_url))


async def check_bot(config: TelegramConfig) -> None:
    """Print what Telegram knows about the bot, so a silent bot is diagnosed in one command."""
    bot, info = await reachable(config, lambda bot: bot.get_webhook_info())
    click.echo(f"ボット: @{bot.username}（{bot.first_name}）")
    click.echo(f"Webhook: {info.url}" if info.url else "Webhook: 未設定（ロングポーリングで受け取ります）")
    click.echo(f"待機中の更新: {info.pending_update_count} 件")
    if info.last_error_date:
        when = info.last_error_date
        when = when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if isinstance(when, datetime) else when
        click.echo(f"最後のエラー: {when} {info.last_error_message}")
    else:
        click.echo("最後のエラー: なし")
