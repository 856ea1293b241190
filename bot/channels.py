"""The channels the help desk speaks through, declared once: each name and its Japanese label.

A conversation, a ticket, a member link and an outbox row name their channel with one of these names
(stored as text, bound as a parameter in SQL); the desk shows the label. `PUBLIC` are the channels
people ask through, which the desk's queue filter and the metrics count; `console` and `test` are the
operators' and the tests'. A new channel starts here (docs/architecture.md, "adding a channel").
"""
from __future__ import annotations

WEB = "web"
TELEGRAM = "telegram"
CONSOLE = "console"
TEST = "test"

#: name → label, in the order the desk lists them.
CHANNELS: dict[str, str] = {WEB: "Webチャット", TELEGRAM: "Telegram", CONSOLE: "コンソール", TEST: "テスト"}
PUBLIC: tuple[str, ...] = (WEB, TELEGRAM)
