"""One place for the Japanese error text: every sentence the server sends for an error is written in
helpdesk/errors.py's tables (the API, the error pages, the desk console, the Telegram bot), and the
widget's own words for a failure (the server unreachable) in one object of frame-api.js."""
from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

SERVER_CODE = ("bot", "handlers", "helpdesk", "kb", "records", "storage")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def fixed_parts(template: str) -> list[str]:
    """A whole sentence (not a page title's few words), or the pieces between its `{fields}` long enough
    to be recognised elsewhere (not a common ending like 「を指定してください。」)."""
    pieces = re.split(r"\{[^}]*\}", template)
    if len(pieces) == 1:
        return pieces if template.endswith("。") else []
    return [p for p in pieces if len(p) >= 15]


def test_every_error_sentence_is_written_once():
    """The sentences written in helpdesk/errors.py appear nowhere else (the ones it refers to, which
    the core says in a chat reply, are written beside their exception and only referred to there)."""
    own = ROOT / "helpdesk" / "errors.py"
    literals = [n.value for n in ast.walk(ast.parse(own.read_text(encoding="utf-8")))
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and JAPANESE.search(n.value)]
    pieces = {p for t in literals for p in fixed_parts(t)}
    assert len(pieces) > 30
    written_twice = sorted(
        f"{path.relative_to(ROOT)}: {piece}"
        for package in SERVER_CODE for path in (ROOT / package).rglob("*.py") if path != own
        for piece in pieces if piece in path.read_text(encoding="utf-8"))
    assert written_twice == []


def test_the_desk_console_and_the_bot_say_the_tables_sentences():
    from bot.desk.actions import EmptyText, TextTooLong, TooLongForTelegram
    from bot.desk.tickets import TicketStateError
    from handlers.telegram import updates as telegram_handlers
    from helpdesk.errors import by_code, describe

    assert describe(EmptyText()).message == "本文を入力してください。"
    assert describe(TextTooLong()).message == "本文は4000文字以内にしてください。"
    assert describe(TooLongForTelegram(5000, 4070)).message.startswith("Telegram に送る返信は1通4070文字までです")
    assert describe(TicketStateError("closed", "reply")).message == "この問い合わせは「終了」のため、その操作はできません。"
    assert telegram_handlers.APOLOGY == by_code("telegram_failed").message


def test_the_widgets_own_failure_words_are_in_one_place():
    failure = re.compile(r"ませんでした|エラーが発生")
    static = ROOT / "handlers" / "static"
    found = sorted(p.name for p in static.glob("*.js") if failure.search(p.read_text(encoding="utf-8")))
    # frame-api.js's TEXTS; widget.js runs in the host page, apart from the frame's modules.
    assert found == ["frame-api.js", "widget.js"]
