"""The operations desk's business hours: when a person can answer, and what to tell the user otherwise.

Default: weekdays 9:00–17:00 Japan time, closed on Japanese public holidays (jpholiday, which knows
substitute and citizens' holidays) and over the year end, 12/29–1/3. All are settings (DESK_DAYS,
DESK_HOURS "09:00-17:00", DESK_CLOSED_ON_HOLIDAYS, DESK_CLOSED_DAYS "12-29..01-03"), read by
`BusinessHours.from_settings`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable

import jpholiday

from .buttons import DESK_NAME, DESK_PHONE

JST = timezone(timedelta(hours=9), "JST")  # Japan has no daylight saving: a fixed offset is exact
WEEKDAYS_JA = "月火水木金土日"
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
YEAR_END = "12-29..01-03"
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


@dataclass(frozen=True)
class BusinessHours:
    opens: time = time(9, 0)
    closes: time = time(17, 0)
    closed_days: frozenset[tuple[int, int]] = frozenset(_days_between((12, 29), (1, 3)))
    weekdays: frozenset[int] = frozenset(range(5))
    holidays: bool = True

    @classmethod
    def from_settings(cls, settings) -> "BusinessHours":
        """From the declared settings (any mapping); a missing setting keeps its default."""
        days = settings.get("DESK_DAYS") or WEEKDAY_NAMES[:5]
        return cls.parse(settings.get("DESK_HOURS") or "09:00-17:00", settings.get("DESK_CLOSED_DAYS", YEAR_END),
                         weekdays=frozenset(WEEKDAY_NAMES.index(d) for d in days),
                         holidays=bool(settings.get("DESK_CLOSED_ON_HOLIDAYS", True)))

    @classmethod
    def parse(cls, hours: str = "09:00-17:00", closed_days: str = YEAR_END, *,
              weekdays: frozenset[int] = frozenset(range(5)), holidays: bool = True) -> "BusinessHours":
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
        return cls(opens, closes, frozenset(days), weekdays, holidays)

    def closed_reason(self, day: date) -> str | None:
        """Why the desk is closed all day (土曜日, 祝日（文化の日）, 年末年始), or None on a working day."""
        if (day.month, day.day) in self.closed_days:
            return "年末年始の休業日"
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

    def label(self) -> str:
        """The hours as users read them: 平日 9:00〜17:00（土日祝日・年末年始を除く）."""
        return f"平日 {self.opens:%-H:%M}〜{self.closes:%-H:%M}（土日祝日・年末年始を除く）"

    def notice(self, moment: datetime) -> str | None:
        """What to tell a user who asked for a person outside business hours (None when open)."""
        if self.is_open(moment):
            return None
        local, at = moment.astimezone(JST), self.next_open(moment)
        why = self.closed_reason(local.date())
        now = f"本日は{why}のため、" if why else ""
        return (f"{now}ただいま受付時間外です。受付時間は{self.label()}です。担当者からの返信は"
                f"{at.month}月{at.day}日（{WEEKDAYS_JA[at.weekday()]}）{at:%-H:%M}以降になります。"
                f"お急ぎの場合は、受付時間内に{DESK_NAME} フリーダイヤル {DESK_PHONE} へお電話ください。")
