"""Conversation states, messaging chats, desk agents' messages and the messages table rebuilt by
migration 0006, on a real SQLite file through the real store and core."""
from __future__ import annotations

import sqlite3

import pytest

from bot import Asker, Store
from bot.errors import ConversationNotFound, NotAnAgent
from bot.conversation.state import (BOT, CLOSED, STATES, TRANSITIONS, WAITING_DESK, WITH_AGENT, StateChanged,
                       TransitionNotAllowed)
from bot.store.migrations import MIGRATIONS
from storage.sqlite import apply_migrations, connect

from tests.test_core import core, store  # noqa: F401  (the same fixtures: a real store and core)

AGENT = Asker(role="desk", display_name="佐藤（運営事務局）", account="desk:sato")


def opened(core, asker=Asker()) -> str:
    return core.open_conversation("test", asker).conversation.id


def test_the_declared_moves_are_exactly_these():
    assert STATES == ("bot", "waiting_desk", "with_agent", "closed")
    assert {s: set(t) for s, t in TRANSITIONS.items()} == {
        "bot": {"waiting_desk"},
        "waiting_desk": {"with_agent", "closed"},
        "with_agent": {"closed", "waiting_desk"},
        "closed": {"bot"},
    }


def test_a_conversation_moves_through_every_state_and_a_forbidden_move_is_refused(core, store):
    cid = opened(core)
    assert store.conversation(cid).state == BOT
    walk = [WAITING_DESK, WITH_AGENT, WAITING_DESK, WITH_AGENT, CLOSED, BOT, WAITING_DESK, CLOSED]
    for wanted in walk:
        assert core.move(cid, wanted).state == wanted
        assert store.conversation(cid).state == wanted
    with pytest.raises(TransitionNotAllowed) as refused:
        core.move(cid, WITH_AGENT)  # closed → with_agent is not declared
    assert (refused.value.current, refused.value.wanted) == (CLOSED, WITH_AGENT)
    assert store.conversation(cid).state == CLOSED
    for current, wanted in [(BOT, CLOSED), (BOT, WITH_AGENT), (CLOSED, WAITING_DESK)]:
        other = opened(core)
        if current == CLOSED:
            core.move(other, WAITING_DESK)
            core.move(other, CLOSED)
        with pytest.raises(TransitionNotAllowed):
            core.move(other, wanted)
    with pytest.raises(TransitionNotAllowed):
        core.move(cid, "archived")  # not a state at all


def test_a_move_from_a_state_already_left_loses(core, store):
    """Two agents take the same waiting conversation: the second one's move started from a state
    the conversation has left, and nothing changes."""
    cid = opened(core)
    core.move(cid, WAITING_DESK)
    core.move(cid, WITH_AGENT, expected=WAITING_DESK)
    with pytest.raises(StateChanged) as lost:
        core.move(cid, WITH_AGENT, expected=WAITING_DESK)
    assert (lost.value.expected, lost.value.current) == (WAITING_DESK, WITH_AGENT)
    with pytest.raises(ConversationNotFound):
        core.move("nope", WAITING_DESK)


def test_every_move_goes_through_the_one_move_of_the_store(core, store):
    """The core's moves and the desk's (inside their own transactions) are the store's `move_state`:
    the same checks, the same errors, and a move to the state the conversation is in changes nothing."""
    import bot.desk.actions
    import bot.desk.handoff

    assert not hasattr(bot.desk.handoff.Handoff, "move") and not hasattr(bot.desk.handoff.Handoff, "MOVE_SQL")
    assert "UPDATE conversations SET state" not in open(bot.desk.actions.__file__, encoding="utf-8").read()
    cid = opened(core)
    core.move(cid, WAITING_DESK)
    assert core.move(cid, WAITING_DESK).state == WAITING_DESK
    with store.transaction() as conn:
        assert store.move_state(conn, cid, WITH_AGENT, expected=WAITING_DESK) == WAITING_DESK
        with pytest.raises(StateChanged) as lost:
            store.move_state(conn, cid, CLOSED, expected=WAITING_DESK)
        assert (lost.value.expected, lost.value.current) == (WAITING_DESK, WITH_AGENT)
        with pytest.raises(TransitionNotAllowed):
            store.move_state(conn, cid, BOT)
        with pytest.raises(ConversationNotFound):
            store.move_state(conn, "nope", WAITING_DESK)
    assert store.state(cid) == WITH_AGENT


def test_the_bot_is_silent_while_the_desk_holds_and_replays_still_work(core, store):
    cid = opened(core)
    first = core.reply(cid, "会員数は？", Asker(), "test")
    assert first.reply.kind == "answer"
    core.move(cid, WAITING_DESK)
    held = core.reply(cid, "まだですか", Asker(), "test", idempotency_key="k-held")
    assert (held.answer, held.reply, held.replayed) == (None, None, False)
    again = core.reply(cid, "まだですか", Asker(), "test", idempotency_key="k-held")
    assert (again.question, again.answer, again.replayed) == (held.question, None, True)
    core.move(cid, WITH_AGENT)
    assert core.reply(cid, "よろしくお願いします", Asker(), "test").answer is None
    assert [m.role for m in store.messages(cid)] == ["user", "bot", "user", "user"]


def test_a_new_question_in_a_closed_conversation_starts_again_with_the_bot(core, store):
    cid = opened(core)
    for wanted in (WAITING_DESK, CLOSED):
        core.move(cid, wanted)
    turn = core.reply(cid, "会員数は？", Asker(), "test")
    assert turn.reply.kind == "answer" and turn.reply.sources[0].slug == "member-count"
    assert store.conversation(cid).state == BOT


def test_agent_messages_are_stored_with_their_author_only_from_an_agent_holding_it(core, store):
    cid = opened(core)
    core.reply(cid, "会員番号1300001の送付先を変えたい", Asker(), "test")
    with pytest.raises(StateChanged):
        core.agent_message(cid, "担当の佐藤です。", AGENT)  # nobody has taken it yet
    core.move(cid, WAITING_DESK)
    core.move(cid, WITH_AGENT)
    with pytest.raises(NotAnAgent):
        core.agent_message(cid, "担当の佐藤です。", Asker(role="staff", account="chiyoda"))
    written = core.agent_message(cid, "担当の佐藤です。会員番号1300001の件、確認します。", AGENT)
    assert (written.role, written.author) == ("agent", "佐藤（運営事務局）")
    stored = store.messages(cid)[-1]
    assert (stored.id, stored.role, stored.text, stored.author) == (
        written.id, "agent", "担当の佐藤です。会員番号1300001の件、確認します。", "佐藤（運営事務局）")
    assert core.transcript(cid)[-1].text == "担当の佐藤です。会員番号13***01の件、確認します。"


def test_a_chat_has_one_conversation_with_one_owner_before_and_after_linking(core, store):
    stranger = core.linked_asker("telegram", "555")
    assert (stranger.role, stranger.account) == ("anonymous", "telegram:555")
    first = core.conversation_for_chat("telegram", "555", stranger)
    assert (first.channel, first.external_chat_id, first.owner, first.state) == ("telegram", "555", "telegram:555", BOT)
    linked = Asker(role="member", member_number="1300001", account="telegram:555")  # what linking gives
    assert core.conversation_for_chat("telegram", "555", linked) == first
    assert core.conversation_for_chat("telegram", "556", core.linked_asker("telegram", "556")).id != first.id
    assert core.conversation_for_chat("web", "555", stranger).id != first.id  # the channel is part of the key
    with pytest.raises(ConversationNotFound):  # another account in the same chat
        core.conversation_for_chat("telegram", "555", core.linked_asker("telegram", "777"))
    rows = store.conn.execute("SELECT count(*) FROM conversations WHERE external_chat_id = '555'").fetchone()[0]
    assert rows == 2


def test_migration_0006_rebuilds_messages_keeping_every_row(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = connect(path)
    upto = [m for m in MIGRATIONS if m[0] < "0005"]
    apply_migrations(conn, upto)
    at = "2026-11-01T09:00:00+09:00"
    conn.execute("INSERT INTO conversations (id, token_hash, channel, asker_role, created_at) "
                 "VALUES ('c1', 'h', 'web', 'anonymous', :at)", {"at": at})
    conn.execute("INSERT INTO messages (id, conversation_id, role, text, idempotency_key, created_at, redacted) "
                 "VALUES (1, 'c1', 'user', '会員数は？', 'k1', :at, '会員数は？')", {"at": at})
    conn.execute("INSERT INTO messages (id, conversation_id, role, text, reply, in_reply_to, created_at) "
                 "VALUES (2, 'c1', 'bot', '答え', '{\"text\": \"答え\", \"kind\": \"answer\"}', 1, :at)", {"at": at})
    conn.execute("INSERT INTO feedback (message_id, helpful, created_at) VALUES (2, 1, :at)", {"at": at})
    conn.execute("INSERT INTO unanswered (conversation_id, message_id, text, confidence, channel, asker_role, "
                 "created_at) VALUES ('c1', 1, '会員数は？', 0.1, 'web', 'anonymous', :at)", {"at": at})
    before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("messages", "feedback", "unanswered")}
    with pytest.raises(sqlite3.IntegrityError):  # the old CHECK: no agents
        conn.execute("INSERT INTO messages (conversation_id, role, text, created_at) VALUES ('c1', 'agent', 'x', :at)",
                     {"at": at})
    conn.close()

    store = Store(path)  # applies 0005 onwards
    try:
        conn = store.conn
        after = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("feedback", "unanswered")}
        assert [tuple(r) for r in after["feedback"]] == [tuple(r) for r in before["feedback"]]
        assert [tuple(r) for r in after["unanswered"]] == [tuple(r) for r in before["unanswered"]]
        messages = conn.execute("SELECT id, conversation_id, role, text, reply, in_reply_to, idempotency_key, "
                                "created_at, redacted FROM messages ORDER BY id").fetchall()
        assert [tuple(r) for r in messages] == [tuple(r) for r in before["messages"]]
        assert store.conversation("c1").state == BOT
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert [r[1] for r in conn.execute("PRAGMA index_list(messages)")].count("messages_by_conversation") == 1
        store.move("c1", WAITING_DESK)
        store.move("c1", WITH_AGENT)
        written = store.add_agent_message("c1", "担当者です。", "佐藤", at)
        assert written.id == 3 and store.message(3).role == "agent"
        with pytest.raises(sqlite3.IntegrityError):  # foreign keys still hold on the new table
            conn.execute("INSERT INTO feedback (message_id, helpful, created_at) VALUES (99, 1, :at)", {"at": at})
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO messages (conversation_id, role, text, created_at) VALUES ('c1', 'robot', 'x', :at)",
                         {"at": at})
    finally:
        store.close()
