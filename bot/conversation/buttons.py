"""Buttons any channel can draw, the ids they send back, and the desk they lead to.

Kept apart from bot/model.py so that the typed actions (bot/conversation/actions.py) and the reply values can both
use them.
"""
from __future__ import annotations

from dataclasses import dataclass

# A button carries a short id that the core resolves (Telegram's callback_data holds at most 64 bytes,
# and most article titles are longer): `kb:<slug>` an article, `choice:<n>` the n-th choice the last
# reply remembers, `handoff` the desk, `help` how to use the chat, `lookup:<topic>` a lookup prompt.
BUTTON_ID_BYTES = 64
ARTICLE_PAYLOAD = "kb:"  # "kb:<slug>" also answers that article when typed or deep-linked
CHOICE_BUTTON = "choice:"
LOOKUP_BUTTON = "lookup:"
HANDOFF_BUTTON = "handoff"
HELP_BUTTON = "help"
# What a channel without button ids sends (and shows as the user's message) for the desk button.
HANDOFF_PAYLOAD = "担当者と話したい"

DESK_NAME = "MAMIS運営事務局"
# The desk's phone line and hours are settings (DESK_PHONE, DESK_HOURS, …): bot/desk/hours.py words them.


@dataclass(frozen=True)
class Button:
    """A button any channel can draw: `label` shown on it, `id` (<= 64 bytes) sent back when pressed,
    and `echo`, the short text a channel shows as the user's message (the label when None)."""

    label: str
    id: str
    echo: str | None = None

    def __post_init__(self):
        if not self.id or len(self.id.encode()) > BUTTON_ID_BYTES:
            raise ValueError(f"button id must be 1..{BUTTON_ID_BYTES} bytes: {self.id!r}")

    @property
    def payload(self) -> str:
        """The text this button stands for, for channels that send text rather than ids."""
        return self.echo or self.label

    def to_dict(self) -> dict:
        return {"label": self.label, "id": self.id, "echo": self.echo}

    @classmethod
    def from_dict(cls, d: dict, index: int = 0) -> "Button":
        """Older replies stored {label, payload}: the payload becomes the id where it fits."""
        if "id" in d:
            return cls(d["label"], d["id"], d.get("echo"))
        payload = d.get("payload") or d["label"]
        fits = len(payload.encode()) <= BUTTON_ID_BYTES
        return cls(d["label"], payload if fits else f"{CHOICE_BUTTON}{index}",
                   None if payload == d["label"] else payload)
