"""Reading a whole number that a client sent (a message id, a choice's index, a page): one parser.

`str.isdigit` is true for 「²」 and 「١」, which `int()` refuses or reads as another script's digit, and
`int()` takes any length while SQLite holds at most 19 digits (a bigger number raises OverflowError
when bound). So a number from outside is ASCII digits only, and short enough for SQLite; anything
else is simply not a number, and the caller says so in its own words.
"""
from __future__ import annotations

import re

MAX_DIGITS = 18  # every 18-digit number fits SQLite's signed 64-bit INTEGER
MAX_NUMBER = 10 ** MAX_DIGITS - 1
_DIGITS = re.compile(r"[0-9]+")


def whole_number(value, max_digits: int = MAX_DIGITS) -> int | None:
    """`value` (a str) as a non-negative int when it is 1 to `max_digits` ASCII digits, else None."""
    if not isinstance(value, str) or not 0 < len(value) <= max_digits or not _DIGITS.fullmatch(value):
        return None
    return int(value)
