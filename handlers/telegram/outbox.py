"""Sending to Telegram from the outbox: answers right away, notifications at Telegram's pace.

Every message goes through `Sender.send`, which turns the Bot API's refusals into what they mean
for us: 403 (the user blocked the bot) marks the chat unreachable and nothing more is sent to it until
it writes again; 429 (flood control) waits the `retry_after` Telegram gives and tries again; a network
failure leaves the row for the drain to retry later; a 400 (Telegram will never take this message) is
given up and logged without the text.

`Drain` runs beside the bot: every half second (or when woken) it sends the outbox rows that are due
(notifications written by other processes, answers an earlier run stored but did not send), at most
about 30 messages a second overall and one per chat per second, which are Telegram's limits for bots.
The limits are counted with the `limits` library's moving windows.
"""
from __future__ import annotations

import asyncio
import logging
import time
import warnings
from datetime import timedelta

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.warnings import PTBDeprecationWarning

from handlers.telegram.render import outbox_html, parts

log = logging.getLogger("helpdesk.telegram")

SENT, UNREACHABLE, FAILED, LATER = "sent", "unreachable", "failed", "later"
RETRIES_429 = 5
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # Telegram objects are frozen: one serves every send


def keyboard(payload: dict) -> InlineKeyboardMarkup | None:
    rows = payload.get("buttons")
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                 for row in rows])


def seconds(error: RetryAfter) -> float:
    """`retry_after` in seconds, whichever type this version of the library gives (int or timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Sender:
    """Sends outbox rows for one bot process (`run` is its claim on the rows it sends itself)."""

    def __init__(self, bot, outbox, run: str, now):
        self.bot, self.outbox, self.run, self.now = bot, outbox, run, now
        self.unreachable: set[str] = set()

    async def send(self, row) -> str:
        """Send one row and record the outcome in the outbox. A text over Telegram's limit (a desk
        agent's long reply) goes in parts, the keyboard with the last; a retry resumes after the
        parts already sent."""
        texts = parts(outbox_html(row.payload))
        for n in range(row.payload.get("parts_sent", 0), len(texts)):
            last = n == len(texts) - 1
            outcome = await self.send_text(row, texts[n], keyboard(row.payload) if last else None)
            if outcome != SENT:
                return outcome
            if not last:
                await asyncio.to_thread(self.outbox.progress, row.id, n + 1)
        return SENT

    async def send_text(self, row, text: str, markup) -> str:
        chat_id = int(row.chat_id)
        for _attempt in range(RETRIES_429):
            try:
                await self.bot.send_message(chat_id=chat_id, text=text, parse_mode=ParseMode.HTML,
                                            reply_markup=markup, link_preview_options=NO_PREVIEW)
                break
            except RetryAfter as e:
                wait = seconds(e)
                log.warning("flood control: waiting %.1f s before sending again", wait)
                await asyncio.sleep(wait)
            except Forbidden:
                log.info("chat %s blocked the bot; no more messages are sent to it", chat_id)
                self.unreachable.add(row.chat_id)
                await asyncio.to_thread(self._unreachable, row)
                return UNREACHABLE
            except BadRequest as e:
                log.error("Telegram refused outbox row %s: %s", row.id, type(e).__name__)
                await asyncio.to_thread(self.outbox.failed, row.id, "bad_request")
                return FAILED
            except NetworkError as e:
                log.warning("sending outbox row %s failed (%s); trying again later", row.id, type(e).__name__)
                await asyncio.to_thread(self.outbox.later, row.id, time.time() + min(60, 2 ** (row.attempts + 1)))
                return LATER
        else:
            await asyncio.to_thread(self.outbox.later, row.id, time.time() + 1)
            return LATER
        return SENT

    def _unreachable(self, row) -> None:
        self.outbox.unreachable(row.chat_id, self.now())
        self.outbox.failed(row.id, "forbidden")

    async def send_all(self, rows) -> None:
        """Send the rows answering one update in order; mark the sent ones in one write."""
        sent = []
        for i, row in enumerate(rows):
            outcome = await self.send(row)
            if outcome != SENT:
                if outcome == LATER:  # keep the order: the rest waits for the drain too
                    for rest in rows[i + 1:]:
                        await asyncio.to_thread(self.outbox.later, rest.id, time.time())
                break
            sent.append(row.id)
        if sent:
            await asyncio.to_thread(self.outbox.sent, sent, self.now())


class Drain:
    """Sends due outbox rows in the background, within Telegram's limits."""

    def __init__(self, sender: Sender, *, per_second: int = 30, per_chat_second: int = 1, interval: float = 0.5):
        self.sender, self.interval = sender, interval
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.overall = RateLimitItemPerSecond(per_second)
        self.per_chat = RateLimitItemPerSecond(per_chat_second)
        self.wake = asyncio.Event()

    async def run(self) -> None:
        outbox = self.sender.outbox
        await asyncio.to_thread(outbox.drop_unwanted)
        while True:
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # never let the drain die: the next round tries again
                log.error("outbox drain failed: %s", type(e).__name__)
            try:
                await asyncio.wait_for(self.wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()

    async def once(self) -> int:
        """One round: send what is due and allowed now; return how many were sent."""
        rows = await asyncio.to_thread(self.sender.outbox.due, self.sender.run, time.time())
        waiting: set[str] = set()
        sent = 0
        for row in rows:
            if row.chat_id in waiting or row.chat_id in self.sender.unreachable:
                continue
            if not self.limiter.test(self.per_chat, row.chat_id):
                waiting.add(row.chat_id)  # later rows of this chat keep their order
                continue
            while not self.limiter.test(self.overall, "all"):
                await asyncio.sleep(0.05)
            if not await asyncio.to_thread(self.sender.outbox.claim, row.id, self.sender.run):
                continue
            self.limiter.hit(self.overall, "all")
            self.limiter.hit(self.per_chat, row.chat_id)
            outcome = await self.sender.send(row)
            if outcome == SENT:
                await asyncio.to_thread(self.sender.outbox.sent, [row.id], self.sender.now())
                sent += 1
            else:
                waiting.add(row.chat_id)
        return sent
