"""The operations desk's business hours: when a person can answer, and what to tell the user otherwise.

Default: weekdays 9:00–17:00 Japan time, closed on Japanese public holidays (jpholiday, which knows
substitute and citizens' holidays) and over the year end, 12/29–1/3, on the phone line 0120-110-030.
All are settings (DESK_DAYS, DESK_HOURS "09:00-17:00", DESK_CLOSED_ON_HOLIDAYS, DESK_CLOSED_DAYS
"12-29..01-03", DESK_PHONE), read by `BusinessHours.from_settings`. Every sentence the bot says about
the desk (bot/conversation/phrases.py, the handoff, the phone action, the desk console) is worded from one value of
this class, so what the bot says and when the desk answers cannot disagree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable

import jpholiday

from bot.conversation.buttons import DESK_NAME

JST = timezone(timedelta(hours=9), "JST")  # Japan has no daylight saving: a fixed offset is exact
WEEKDAYS_JA = "月火水木金土日"
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
YEAR_END = "12-29..01-03"
DESK_PHONE = "0120-110-030"
FREE_DIAL = ("0120", "0800")  # toll-free prefixes: the number is called フリーダイヤル only then
_HOURS = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_DAY = re.compile(r"(\d{1,2})-(\d{1,2})")


def stamp(clock: Callable[[], datetime]) -> str:
    """The time every record of the help desk carries: Japan time, to the second, so that times
    compare as strings."""
    return clock().astimezone(JST).isoformat(timespec="seconds")


class BadHours(ValueError):
    """A business-hours setting that cannot be read; the message says what is expected."""


def _month_day(text: str) -> tuple[int, int]:
    m = _DAY.fullmatch(text.strip())
    if not m or not (1 <= int(m[1]) <= 12 and 1 <= int(m[2]) <= 31):
        raise BadHours(f"DESK_CLOSED_DAYS: {text!r} は月-日（例: 12-29）ではありません")
    return int(m[1]), int(m[2])


def _days_between(first: tuple[int, int], last: tuple[int, int]) -> set[tuple[int, int]]:
    """Month-days from `first` to `last` inclusive, wrapping over the year end (12-29..01-03)."""
    days, d = set(), date(2000, *first)  # a leap year, so 02-29 can be named
    while True:
        days.add((d.month, d.day))
        if (d.month, d.day) == last:
            return days
        d += timedelta(days=1)


def _year_end(month_day: tuple[int, int]) -> bool:
    """A closed day that reads as 年末年始 (late December, early January)."""
    month, day = month_day
    return (month == 12 and day >= 20) or (month == 1 and day <= 10)


def _day_runs(days: list[int]) -> str:
    """Weekdays as users read them: 月〜土, 月・水・金, 月〜水・金 (runs of three or more joined by 〜)."""
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return "・".join(WEEKDAYS_JA[r[0]] + "〜" + WEEKDAYS_JA[r[-1]] if len(r) >= 3 else
                    "・".join(WEEKDAYS_JA[d] for d in r) for r in runs)


def phone_kind(phone: str) -> str:
    """フリーダイヤル for a toll-free number, else 電話: the word the desk's sentences put before it."""
    return "フリーダイヤル" if phone.startswith(FREE_DIAL) else "電話"


def phone_text(phone: str) -> str:
    """The number as the desk's sentences name it: フリーダイヤル 0120-110-030, or 電話 03-3942-6139."""
    return f"{phone_kind(phone)} {phone}"


@dataclass(frozen=True)
class BusinessHours:
    opens: time = time(9, 0)
    closes: time = time(17, 0)
    closed_days: frozenset[tuple[int, int]] = frozenset(_days_between((12, 29), (1, 3)))
    weekdays: frozenset[int] = frozenset(range(5))
    holidays: bool = True
    phone: str = DESK_PHONE  # the desk's line, answered in these hours

    @classmethod
    def from_settings(cls, settings) -> "BusinessHours":
        """From the declared settings (any mapping); a missing setting keeps its default."""
        days = settings.get("DESK_DAYS") or WEEKDAY_NAMES[:5]
        return cls.parse(settings.get("DESK_HOURS") or "09:00-17:00", settings.get("DESK_CLOSED_DAYS", YEAR_END),
                         weekdays=frozenset(WEEKDAY_NAMES.index(d) for d in days),
                         holidays=bool(settings.get("DESK_CLOSED_ON_HOLIDAYS", True)),
                         phone=settings.get("DESK_PHONE") or DESK_PHONE)

    @classmethod
    def parse(cls, hours: str = "09:00-17:00", closed_days: str = YEAR_END, *,
              weekdays: frozenset[int] = frozenset(range(5)), holidays: bool = True,
              phone: str = DESK_PHONE) -> "BusinessHours":
        """Read the two settings; raises BadHours with a Japanese explanation when either is malformed."""
        m = _HOURS.fullmatch(hours or "")
        if not m:
            raise BadHours(f"DESK_HOURS: {hours!r} は「09:00-17:00」の形で指定してください")
        try:
            opens, closes = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
        except ValueError:
            raise BadHours(f"DESK_HOURS: {hours!r} の時刻が正しくありません") from None
        if opens >= closes:
            raise BadHours(f"DESK_HOURS: {hours!r} の開始は終了より前にしてください")
        days: set[tuple[int, int]] = set()
        for part in filter(None, (p.strip() for p in (closed_days or "").split(","))):
            first, _, last = part.partition("..")
            days |= _days_between(_month_day(first), _month_day(last)) if last else {_month_day(first)}
        return cls(opens, closes, frozenset(days), weekdays, holidays, phone)

    def closed_reason(self, day: date) -> str | None:
        """Why the desk is closed all day (土曜日, 祝日（文化の日）, 年末年始), or None on a working day."""
        if (day.month, day.day) in self.closed_days:
            return "年末年始の休業日" if _year_end((day.month, day.day)) else "休業日"
        holiday = jpholiday.is_holiday_name(day) if self.holidays else None
        if holiday:
            return f"祝日（{holiday}）"
        if day.weekday() not in self.weekdays:
            return WEEKDAYS_JA[day.weekday()] + "曜日"
        return None

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(JST)
        return self.closed_reason(local.date()) is None and self.opens <= local.time() < self.closes

    def next_open(self, moment: datetime) -> datetime:
        """The next moment the desk opens (`moment` itself when it is open)."""
        local = moment.astimezone(JST)
        if self.is_open(local):
            return local
        day = local.date()
        if self.closed_reason(day) is not None or local.time() >= self.closes:
            day += timedelta(days=1)
        while self.closed_reason(day) is not None:
            day += timedelta(days=1)
        return datetime.combine(day, self.opens, JST)

    def days(self) -> str:
        """The open weekdays: 平日 only for Monday to Friday with holidays closed (what 平日 means),
        毎日 for all seven, else the days themselves (月〜土, 月・水・金)."""
        if self.weekdays == frozenset(range(5)) and self.holidays:
            return "平日"
        return "毎日" if self.weekdays == frozenset(range(7)) else _day_runs(list(self.weekdays))

    def when(self) -> str:
        """Days and hours in a phrase: 平日9:00〜17:00, 月〜土 9:30〜18:00."""
        days = self.days()
        return f"{days}{'' if days in ('平日', '毎日') else ' '}{self.opens:%-H:%M}〜{self.closes:%-H:%M}"

    def closed(self) -> str:
        """The closed days a reader of `when()` might not assume: 土日祝日・年末年始 after 平日 (as
        always said), else holidays and closed dates only, since the open weekdays are named."""
        parts = ["土日祝日" if self.days() == "平日" else "祝日"] if self.holidays else []
        if any(map(_year_end, self.closed_days)):
            parts.append("年末年始")
        if not all(map(_year_end, self.closed_days)):
            parts.append("所定の休業日")
        return "・".join(parts)

    def label(self) -> str:
        """The hours as users read them: 平日9:00〜17:00（土日祝日・年末年始を除く）, 毎日 8:00〜20:00."""
        closed = self.closed()
        return self.when() + (f"（{closed}を除く）" if closed else "")

    def phone_kind(self) -> str:
        return phone_kind(self.phone)

    @property
    def tel(self) -> str:
        """The phone line as a link that dials it (tel:0120110030)."""
        return "tel:" + self.phone.replace("-", "")

    def contact(self) -> str:
        """The desk as the bot's sentences name it: MAMIS運営事務局（フリーダイヤル 0120-110-030、平日9:00〜17:00）."""
        return f"{DESK_NAME}（{phone_text(self.phone)}、{self.when()}）"

    def notice(self, moment: datetime) -> str | None:
        """What to tell a user who asked for a person outside business hours (None when open)."""
        if self.is_open(moment):
            return None
        local, at = moment.astimezone(JST), self.next_open(moment)
        why = self.closed_reason(local.date())
        now = f"本日は{why}のため、" if why else ""
        return (f"{now}ただいま受付時間外です。受付時間は{self.label()}です。担当者からの返信は"
                f"{at.month}月{at.day}日（{WEEKDAYS_JA[at.weekday()]}）{at:%-H:%M}以降になります。"
                f"お急ぎの場合は、受付時間内に{DESK_NAME} {phone_text(self.phone)} へお電話ください。")
