"""The Telegram bot's settings as one value (`TelegramConfig.from_settings`), read by the bot process
(handlers/telegram/app.py), its worker processes (handlers/telegram/work.py) and `helpdesk telegram`."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class TelegramConfig:
    """The bot's settings, taken from the declared list (helpdesk/settings.py), which holds their defaults."""

    token: str | None
    api_url: str
    public_url: str | None
    webhook_url: str | None
    webhook_secret: str | None
    rate_limit: str
    link_rate_limit: str
    concurrent_updates: int
    drain_interval: float
    workers: int

    @classmethod
    def from_settings(cls, settings: Mapping) -> "TelegramConfig":
        return cls(token=settings["TELEGRAM_BOT_TOKEN"], api_url=settings["TELEGRAM_API_URL"],
                   public_url=settings["PUBLIC_URL"], webhook_url=settings["TELEGRAM_WEBHOOK_URL"],
                   webhook_secret=settings["TELEGRAM_WEBHOOK_SECRET"], rate_limit=settings["TELEGRAM_RATE_LIMIT"],
                   link_rate_limit=settings["TELEGRAM_LINK_RATE_LIMIT"],
                   concurrent_updates=int(settings["TELEGRAM_CONCURRENT_UPDATES"]),
                   drain_interval=float(settings["TELEGRAM_DRAIN_INTERVAL"]),
                   workers=default_workers() if settings["TELEGRAM_WORKERS"] is None
                   else int(settings["TELEGRAM_WORKERS"]))

    @property
    def base_url(self) -> str:
        return self.api_url.rstrip("/") + "/bot"

    @property
    def base_file_url(self) -> str:
        return self.api_url.rstrip("/") + "/file/bot"


def default_workers() -> int:
    """One CPU for the event loop (busy under load: polling, parsing, sending), the rest for answering.
    On 2 CPUs one worker answered 330-470 updates/s against 250-300 for two, which contend for the
    database and the CPUs (docs/telegram.md)."""
    return max(1, (os.cpu_count() or 2) - 1)


def use_timedelta_durations() -> None:
    """The library's opt-in to what its next major version does anyway: durations such as a 429's
    `retry_after` as timedelta (handlers/telegram/outbox.py's seconds reads either). Without it, every 429 logs a
    deprecation warning from inside the library. Called by whoever talks to the Bot API (the library
    reads the variable on every use), never as a side effect of an import."""
    os.environ.setdefault("PTB_TIMEDELTA", "1")
