"""Masking what leaves the asker's own view: the desk's transcript, the unanswered log, other logs.

The asker sees their lookups whole; everything written down for someone else gets member numbers,
institution codes and application numbers masked and names cut to their first character, with the
records package's masking helpers so that logs and transcripts mask alike.
"""
from __future__ import annotations

import re
import unicodedata

from records import access

from bot.lookups.requests import person_in

_APPLICATION_IN_TEXT = re.compile(r"A[0-9]{4}-[0-9]{6}")
_SPACES = re.compile(r"[ \u3000]+")


def _any_spacing(name: str) -> re.Pattern:
    """A name as it may be written: 「山田　太郎」「山田 太郎」「山田太郎」 are one person."""
    parts = [re.escape(p) for p in _SPACES.split(name.strip()) if p]
    return re.compile(r"[ \u3000]*".join(parts))


def redact(text: str, names: tuple[str, ...] = ()) -> str:
    """`text` with identifiers masked, and the given names (and any name asked for with 先生/さん)
    reduced to their first character."""
    person = person_in(unicodedata.normalize("NFKC", text or ""))
    for name in sorted({n for n in (*names, person) if n and n.strip()}, key=len, reverse=True):
        text = _any_spacing(name).sub(lambda m: access.mask_name(m.group(0)), text)
    text = _APPLICATION_IN_TEXT.sub(lambda m: access.mask_identifier(m.group(0), 3), text)
    return access.mask_identifiers_in_text(text)
