"""The desk's phone line, days and hours come from the settings wherever the bot speaks (issue 23).

With DESK_DAYS, DESK_HOURS and DESK_PHONE set to something other than the defaults, every sentence that
sends the user to the desk (the core's replies, the handoff offer and the after-hours notice, the phone
and desk buttons, Telegram's /help, the web pages' footer) names the configured line, never the default
「平日9:00〜17:00」 and 0120-110-030.
"""
from __future__ import annotations

from datetime import datetime

import pytest

from bot.hours import BusinessHours

LINE = {"DESK_DAYS": ["mon", "tue", "wed", "thu", "fri", "sat"], "DESK_HOURS": "09:30-18:00",
        "DESK_PHONE": "03-3942-6139"}
CONTACT = "MAMIS運営事務局（電話 03-3942-6139、月〜土 9:30〜18:00）"


@pytest.mark.parametrize("settings, label, contact", [
    ({}, "平日9:00〜17:00（土日祝日・年末年始を除く）", "MAMIS運営事務局（フリーダイヤル 0120-110-030、平日9:00〜17:00）"),
    (LINE, "月〜土 9:30〜18:00（祝日・年末年始を除く）", CONTACT),
    ({"DESK_DAYS": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "DESK_CLOSED_ON_HOLIDAYS": False,
      "DESK_CLOSED_DAYS": "", "DESK_HOURS": "08:00-20:00"},
     "毎日8:00〜20:00", "MAMIS運営事務局（フリーダイヤル 0120-110-030、毎日8:00〜20:00）"),
    # 平日 means Monday to Friday without holidays: open on holidays, the days are named instead.
    ({"DESK_CLOSED_ON_HOLIDAYS": False}, "月〜金 9:00〜17:00（年末年始を除く）",
     "MAMIS運営事務局（フリーダイヤル 0120-110-030、月〜金 9:00〜17:00）"),
    ({"DESK_DAYS": ["mon", "wed", "fri"], "DESK_CLOSED_DAYS": "08-13..08-15", "DESK_PHONE": "0800-123-4567"},
     "月・水・金 9:00〜17:00（祝日・所定の休業日を除く）", "MAMIS運営事務局（フリーダイヤル 0800-123-4567、月・水・金 9:00〜17:00）"),
    ({"DESK_DAYS": ["mon", "tue", "wed", "fri", "sat"]}, "月〜水・金・土 9:00〜17:00（祝日・年末年始を除く）",
     "MAMIS運営事務局（フリーダイヤル 0120-110-030、月〜水・金・土 9:00〜17:00）"),
])
def test_the_label_and_the_contact_say_the_configured_days(settings, label, contact):
    hours = BusinessHours.from_settings(settings)
    assert (hours.label(), hours.contact()) == (label, contact)


def test_a_closed_date_outside_the_year_end_is_not_called_the_year_end():
    hours = BusinessHours.from_settings({"DESK_CLOSED_DAYS": "08-14"})
    assert hours.closed_reason(datetime(2026, 8, 14).date()) == "休業日"
    assert BusinessHours().closed_reason(datetime(2026, 12, 30).date()) == "年末年始の休業日"
