"""The kinds of value a setting can hold, each with how to read it and what is allowed.

A setting arrives typed from config.toml, typed or not from config.json and the caller's mapping, and as
text from an environment variable; each kind accepts all of those and returns one Python value. When a
value does not fit, `parse` raises ValueError and `allowed` says in Japanese what would, so the start-up
error can name the setting and the fix in one line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?")
_CLOCK = re.compile(r"([01]?[0-9]|2[0-4]):([0-5][0-9])")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAYS_JA = dict(zip("月火水木金土日", WEEKDAYS))


class Kind:
    """Base: `parse` turns any accepted form into the value; `allowed` is the Japanese rule."""

    allowed = ""
    label = ""

    def parse(self, value: Any) -> Any:
        raise NotImplementedError

    def text(self, value: Any) -> str:
        """The value as one writes it in config.toml (for docs and `helpdesk config`)."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(f'"{v}"' for v in value) + "]"
        if isinstance(value, str):
            return f'"{value}"'
        return str(value)


@dataclass(frozen=True)
class Text(Kind):
    pattern: str | None = None
    rule: str = "文字列"
    label = "文字列"

    @property
    def allowed(self) -> str:
        return self.rule

    def parse(self, value):
        if not isinstance(value, str) or (self.pattern and not re.fullmatch(self.pattern, value)):
            raise ValueError
        return value


@dataclass(frozen=True)
class Integer(Kind):
    low: int = 0
    high: int | None = None
    label = "整数"

    @property
    def allowed(self) -> str:
        return f"{self.low}〜{self.high} の整数" if self.high is not None else f"{self.low} 以上の整数"

    def parse(self, value):
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
            value = int(value)
        if not isinstance(value, int) or value < self.low or (self.high is not None and value > self.high):
            raise ValueError
        return value


@dataclass(frozen=True)
class Number(Integer):
    label = "数値"

    @property
    def allowed(self) -> str:
        return f"{self.low} より大きい数値"

    def parse(self, value):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > self.low:
            raise ValueError
        return value


class Boolean(Kind):
    allowed = "true または false"
    label = "真偽値"

    def parse(self, value):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError


class RateLimit(Kind):
    allowed = "「30 per minute;300 per hour」の形のレート制限"
    label = "レート制限"

    def parse(self, value):
        from limits import parse_many

        if not isinstance(value, str) or not value.strip():
            raise ValueError
        parse_many(value)  # ValueError when malformed
        return value


class Origins(Kind):
    """A list; from text, separated by spaces or commas. Each one is written into a response header,
    so anything but a bare origin is refused."""

    allowed = "https://www.example.jp のようなオリジン（スキームとホスト、任意でポート）のリスト"
    label = "オリジンのリスト"

    def parse(self, value):
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError
        for origin in items:
            if not isinstance(origin, str) or not ORIGIN.fullmatch(origin):
                raise ValueError
        return list(items)


class Url(Kind):
    allowed = "http:// または https:// で始まる URL（例: https://helpdesk.example.jp）"
    label = "URL"

    def parse(self, value):
        if not isinstance(value, str) or not _URL.fullmatch(value.strip()):
            raise ValueError
        return value.strip().rstrip("/")


class Timestamp(Kind):
    allowed = "UTC からの時差つきの ISO 8601 日時（例: 2026-11-25T10:00:00+09:00）"
    label = "日時"

    def parse(self, value):
        if not isinstance(value, (str, datetime)):
            raise ValueError
        when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        if when.tzinfo is None:
            raise ValueError
        return value if isinstance(value, str) else value.isoformat()


class ClockTime(Kind):
    allowed = "「09:00」の形の時刻"
    label = "時刻"

    def parse(self, value):
        if not isinstance(value, str) or not _CLOCK.fullmatch(value.strip()):
            raise ValueError
        hours, minutes = value.strip().split(":")
        if int(hours) == 24 and minutes != "00":
            raise ValueError
        return f"{int(hours):02d}:{minutes}"


class Hours(Kind):
    """Opening hours of one day, start before end, in Japan time."""

    allowed = "「09:00-17:00」の形の時間帯（開始が終了より前）"
    label = "時間帯"

    def parse(self, value):
        if not isinstance(value, str) or value.count("-") != 1:
            raise ValueError
        start, end = (ClockTime().parse(part) for part in value.replace(" ", "").split("-"))
        if start >= end:
            raise ValueError
        return f"{start}-{end}"


class Weekdays(Kind):
    allowed = "曜日のリスト（mon, tue, wed, thu, fri, sat, sun または 月〜日）"
    label = "曜日のリスト"

    def parse(self, value):
        items = value.replace(",", " ").replace("、", " ").split() if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items:
            raise ValueError
        days = []
        for item in items:
            day = _WEEKDAYS_JA.get(item, item.lower() if isinstance(item, str) else None)
            if day not in WEEKDAYS:
                raise ValueError
            days.append(day)
        return sorted(set(days), key=WEEKDAYS.index)


class Choice(Kind):
    label = "選択肢"

    def __init__(self, *choices: str):
        self.choices = choices

    @property
    def allowed(self) -> str:
        return " / ".join(self.choices) + " のいずれか"

    def parse(self, value):
        if value not in self.choices:
            raise ValueError
        return value


class Folder(Kind):
    allowed = "フォルダのパス"
    label = "フォルダ"

    def parse(self, value):
        if hasattr(value, "__fspath__"):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise ValueError
        return value


class Unfit(ValueError):
    """A value that does not fit, with the exact fault in Japanese (for kinds with many parts)."""


@dataclass(frozen=True)
class ColumnMap(Kind):
    """Per kind of import, a received file's column names renamed to ours ({kind: {theirs: ours}}).

    `known` returns our column names per kind; it is called when a value is checked, so the
    settings module need not import the records package.
    """
    known: Any = None
    allowed = "取り込みの種類（members・institutions・applications・reports）ごとの「受け取った列名 = 本来の列名」の表"
    label = "表"

    def parse(self, value):
        import json

        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError:
                raise Unfit("JSON として読めません。") from None
        if not isinstance(value, dict):
            raise ValueError
        known = self.known() if self.known else {}
        out = {}
        for kind, renames in value.items():
            if kind not in known:
                raise Unfit(f"取り込みの種類「{kind}」はありません（{'・'.join(known)} のいずれか）。")
            if not isinstance(renames, dict):
                raise Unfit(f"{kind} には「受け取った列名 = 本来の列名」の表を書いてください。")
            for theirs, ours in renames.items():
                if not isinstance(ours, str) or ours not in known[kind]:
                    raise Unfit(f"{kind} の「{theirs}」の読み替え先「{ours}」は {kind} の列名ではありません"
                                "（列名は docs/records.md）。")
            if len(set(renames.values())) != len(renames):
                raise Unfit(f"{kind} で同じ列名に読み替える列が2つ以上あります。")
            out[kind] = dict(renames)
        return out

    def text(self, value) -> str:
        import json

        return json.dumps(value, ensure_ascii=False)
