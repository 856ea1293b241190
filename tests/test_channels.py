"""Channel names are declared once (bot/channels.py): the names, their Japanese labels, and SQL that
binds a channel as a parameter instead of spelling it, so a new channel is one line to add."""
from __future__ import annotations

import re

from bot.channels import CHANNELS, PUBLIC, TELEGRAM, WEB
from tests.conftest import ROOT

PACKAGES = ("bot", "handlers", "helpdesk", "kb", "records", "storage")


def sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, path.read_text(encoding="utf-8")


def test_one_list_names_every_channel_with_its_label():
    assert list(CHANNELS) == ["web", "telegram", "console", "test"]
    assert set(PUBLIC) == {WEB, TELEGRAM} and all(CHANNELS[c] for c in CHANNELS)


def test_no_module_spells_a_channel_in_sql_or_labels_it_again():
    literal = re.compile(r"channel\s*(=|!=|IN)\s*\(?'", re.IGNORECASE)
    spelled = [f"{p.relative_to(ROOT)}:{n}" for p, text in sources()
               for n, line in enumerate(text.splitlines(), 1) if literal.search(line)]
    assert spelled == []
    label = re.compile(r"""["'](web|telegram)["']\s*:\s*["'](Webチャット|Telegram)["']""")
    labelled = [str(p.relative_to(ROOT)) for p, text in sources() if label.search(text)]
    assert labelled == []  # bot/channels.py labels them by constant
