"""Updates per second and latency of the Telegram bot, next to an echo-only ceiling from the same run.

The real Application (handlers.telegram.app, long polling) runs in this process, answering in its
worker processes (TELEGRAM_WORKERS, default 2), against the fake Bot API server
(tests/telegram_fake.py), which runs in a process of its own so that its work does not share our
interpreter. The fake drives a closed loop: each of `--chats` chats sends its next question
as soon as the last one was answered; latency is measured by the fake, from offering an update to its
sendMessage arriving. The ceiling is the same Application (same inbox, same per-chat processor, same
polling) with a handler that only echoes the text back.

    .venv/bin/python bench/telegram_bench.py [--updates 2000] [--chats 8] [--json]

JSON keys: updates_per_s, p50_ms, p99_ms, errors, echo_updates_per_s.
Targets: >= 200 updates/s, p99 < 50 ms, no errors, >= 1/4 of the echo ceiling.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402

QUESTIONS = [
    "日医ニュースの送付先を自宅に変更したい",
    "医療機関マスタはいつ更新されますか",
    "会員情報連絡協議会はいつですか",
    "かかりつけ医機能報告の承認研修について",
    "会員CSVのAPI連携はどうやって申し込みますか",
    "こんにちは",
    "新しく開業したクリニックがマスタに出てこない",
    "MAMIS運営事務局の電話番号は",
]


def control(url: str, action: str, body: dict | None = None, timeout: float = 300) -> dict:
    request = urllib.request.Request(f"{url}/_fake/{action}", json.dumps(body or {}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def start_fake() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.telegram_fake"], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    return proc, proc.stdout.readline().strip()


def echo_app(config, services):
    """The same Application, with one handler that only echoes (the ceiling)."""
    from telegram.ext import MessageHandler, filters

    from handlers.telegram.app import TelegramDesk, application

    app = application(config, TelegramDesk(config, services))

    async def echo(update, context):
        await context.bot.send_message(update.effective_chat.id, update.effective_message.text)

    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app


def measure(instance_path: Path, fake_url: str, total: int, chats: int, echo: bool) -> dict:
    from handlers.telegram.app import build_telegram_app
    from handlers.telegram.config import TelegramConfig
    from helpdesk.services import build_services
    from tests.telegram_harness import InProcessBot, bot_settings

    settings = bot_settings(instance_path, fake_url, TELEGRAM_RATE_LIMIT="1000000 per minute")
    services = build_services(instance_path, settings)
    services.searcher().open()
    config = TelegramConfig.from_settings(settings)
    bot = InProcessBot.__new__(InProcessBot)
    bot.services, bot.loop, bot.thread, bot.error = services, None, None, None
    bot.app = echo_app(config, services) if echo else build_telegram_app(config, services)
    bot.start()
    try:
        for n in (min(100, total), total):  # a warm-up round, then the measured one
            control(fake_url, "reset")
            control(fake_url, "drive", {"chats": chats, "total": n, "texts": QUESTIONS,
                                        "first_chat": 10_000 + (50_000 if echo else 0)})
            result = control(fake_url, "result", {"wait": 600})
    finally:
        bot.stop()
    lat = result["latencies"]
    pick = (lambda p: round(percentile(lat, p) * 1000, 2)) if lat else (lambda p: None)
    return {"updates_per_s": round(result["answered"] / result["seconds"], 1) if result["seconds"] else 0.0,
            "p50_ms": pick(50), "p99_ms": pick(99),
            "errors": result["errors"] + (result["offered"] - result["answered"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--chats", type=int, default=8, help="chats asking at the same time (closed loop)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    from tests.conftest import build_instance

    tmp = Path(tempfile.mkdtemp(prefix="telegram-bench-"))
    proc, fake_url = start_fake()
    try:
        instance = build_instance(tmp / "instance")
        bot = measure(instance.path, fake_url, args.updates, args.chats, echo=False)
        echo = measure(instance.path, fake_url, args.updates, args.chats, echo=True)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    figures = {**bot, "echo_updates_per_s": echo["updates_per_s"], "echo_p50_ms": echo["p50_ms"],
               "echo_p99_ms": echo["p99_ms"], "updates": args.updates, "chats": args.chats}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"bot : {bot['updates_per_s']:8.1f} updates/s  p50 {bot['p50_ms']} ms  p99 {bot['p99_ms']} ms  "
          f"errors {bot['errors']}")
    print(f"echo: {echo['updates_per_s']:8.1f} updates/s  p50 {echo['p50_ms']} ms  p99 {echo['p99_ms']} ms  (ceiling)")
    share = bot["updates_per_s"] / echo["updates_per_s"] if echo["updates_per_s"] else 0
    print(f"bot / echo = {share:.2f} (target >= 0.25); targets: >= 200 updates/s, p99 < 50 ms, no errors")


if __name__ == "__main__":
    main()
