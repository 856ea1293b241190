"""The conversation core on the real knowledge base: intents, answers with dates, past events,
follow-ups, choices, unknown questions and the desk, and what the store keeps."""
from __future__ import annotations

from datetime import datetime

import pytest

from bot import (
    ARTICLE_PAYLOAD, HANDOFF_PAYLOAD, JST, Asker, Button, ConversationNotFound, Core, EmptyMessage,
    IdempotencyConflict, MessageTooLong, Reply, Source, Store,
)
from bot.conversation import intents
from bot.conversation.actions import CallDesk, OfferEscalation
from bot.conversation.choices import ArticleChoice
from bot.store.migrations import MIGRATIONS
from bot.conversation.text import plain

TODAY = datetime(2026, 11, 25, 10, 0, tzinfo=JST)
DESK_ACTION = OfferEscalation()
DESK = "MAMIS運営事務局（フリーダイヤル 0120-110-030、平日9:00〜17:00）"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "helpdesk.sqlite")
    yield s
    s.close()


@pytest.fixture
def core(searcher, store):
    return Core(searcher, store, lambda: TODAY)


@pytest.fixture
def conversation(core):
    return core.open_conversation("test", Asker()).conversation.id


def ask(core, conversation, text, asker=Asker()):
    return core.reply(conversation, text, asker, "test").reply


# -- intents -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["こんにちは", "こんにちは！", "はじめまして、よろしくお願いします", "Hello"])
def test_greeting(core, conversation, text):
    reply = ask(core, conversation, text)
    assert reply.kind == "greeting"
    assert reply.text.startswith("こんにちは。MAMISヘルプデスクです。")
    assert reply.buttons == (Button("使い方", "help"),)
    assert reply.sources == () and reply.confidence is None


def test_greeting_answers_in_kind(core, conversation):
    assert ask(core, conversation, "おはようございます").text.startswith("おはようございます。")
    assert ask(core, conversation, "こんばんは").text.startswith("こんばんは。")


@pytest.mark.parametrize("text", ["ありがとうございました。", "ありがとう！", "助かりました", "わかりました、ありがとうございます"])
def test_thanks(core, conversation, text):
    reply = ask(core, conversation, text)
    assert (reply.kind, reply.text) == ("thanks", "どういたしまして。ほかにもご不明な点があれば、お気軽にご質問ください。")


@pytest.mark.parametrize("text", ["使い方", "使い方を教えてください", "ヘルプ", "何ができますか", "このチャットの使い方は？"])
def test_help(core, conversation, text):
    reply = ask(core, conversation, text)
    assert reply.kind == "help"
    assert "MAMISヘルプデスクの使い方です。" in reply.text
    assert "担当者と話したい" in reply.text and "0120-110-030" in reply.text


@pytest.mark.parametrize("text", [
    "担当者と話したい", "オペレーター", "ｵﾍﾟﾚｰﾀｰにつないで", "人に聞きたい", "人と話したいです",
    "担当の方に代わってください", "電話で相談したい", "有人対応", "運営事務局に問い合わせたい", HANDOFF_PAYLOAD,
])
def test_request_for_a_person_offers_the_desk(core, conversation, text):
    reply = ask(core, conversation, text)
    assert reply.kind == "handoff"
    assert reply.text == f"担当者へのご相談は、{DESK}で承ります。お電話でお問い合わせください。"
    assert reply.actions == (CallDesk(),)
    assert [a.to_dict() for a in reply.actions] == [{
        "type": "handoff", "label": "MAMIS運営事務局に電話する", "desk": "MAMIS運営事務局", "phone": "0120-110-030",
        "tel": "tel:0120110030", "hours": "平日9:00〜17:00"}]


def test_a_member_is_also_pointed_to_their_association(core, conversation):
    reply = ask(core, conversation, "担当者と話したい", Asker(role="member", member_number="123456"))
    assert reply.text.endswith("会員の先生方は、ご所属の医師会事務局にもご相談いただけます。")


@pytest.mark.parametrize("text", ["こんにちは、会員数を教えて", "送付区分設定の使い方", "電話番号は？"])
def test_a_question_wrapped_in_an_intent_word_is_still_searched(core, conversation, text):
    assert ask(core, conversation, text).kind == "answer"


# -- answers ---------------------------------------------------------------------------------------------


def test_answer_shows_passage_source_and_article_date(core, conversation):
    reply = ask(core, conversation, "日医ニュースの送付先を自宅に変更したい")
    assert reply.kind == "answer"
    assert reply.confidence >= 0.5
    assert reply.sources == (Source(
        "delivery-settings", "日医ニュース・日本医師会雑誌の送付区分設定（送付する/しない・送付先）", "2026-01-15"),)
    # The date is said once, by the source a channel shows beside the link, not again in the text.
    assert "更新" not in reply.text and "2026年1月15日" not in reply.text
    assert "##" not in reply.text and "](" not in reply.text  # plain text, not Markdown
    assert reply.topic == "delivery-settings"


def test_a_long_passage_is_trimmed_at_a_sentence_end(searcher, store):
    core = Core(searcher, store, lambda: TODAY, passage_chars=80)
    cid = core.open_conversation("test", Asker()).conversation.id
    text = ask(core, cid, "日医ニュースの送付先を自宅に変更したい").text
    body, note = text.split("\n\n")[0].rsplit("\n", 1)
    assert note == "（続きはリンク先の記事をご覧ください）"
    assert len(body) <= 80
    whole = plain(searcher.search("日医ニュースの送付先を自宅に変更したい")[0].passage)
    assert whole.startswith(body) and len(whole) > len(body)
    assert body.endswith("。") or whole[len(body)] == "\n"  # a sentence or a line, never mid-word


def test_an_event_in_the_past_is_said_to_have_taken_place(core, conversation):
    reply = ask(core, conversation, "会員情報担当理事連絡協議会はいつですか")
    assert reply.sources[0].slug == "liaison-council-2026"
    assert reply.text.startswith("この催しは2026年3月16日に開催済みです。")
    assert "更新の記事より" not in reply.text and reply.sources[0].updated == "2026-01-15"


def test_an_event_still_ahead_is_announced_as_such(searcher, store):
    core = Core(searcher, store, lambda: datetime(2026, 2, 1, 9, 0, tzinfo=JST))
    cid = core.open_conversation("test", Asker()).conversation.id
    assert ask(core, cid, "会員情報担当理事連絡協議会はいつですか").text.startswith("この催しは2026年3月16日に開催予定です。")
    core = Core(searcher, store, lambda: datetime(2026, 3, 16, 9, 0, tzinfo=JST))
    assert ask(core, cid, "会員情報担当理事連絡協議会はいつですか").text.startswith("この催しは本日（2026年3月16日）開催です。")


# -- follow-ups ----------------------------------------------------------------------------------------


def test_a_short_follow_up_is_read_against_the_last_topic(core, conversation):
    assert ask(core, conversation, "日医ニュースを自宅に送ってほしい").topic == "delivery-settings"
    follow = ask(core, conversation, "電話番号は？")
    assert follow.kind == "answer" and follow.sources[0].slug == "delivery-settings"
    assert "0120-110-030" in follow.text


def test_the_same_follow_up_without_a_topic_is_searched_on_its_own(core, conversation):
    assert ask(core, conversation, "電話番号は？").sources[0].slug == "contact-desk"


def test_follow_up_on_an_event_keeps_the_event_and_says_it_is_past(core, conversation):
    ask(core, conversation, "承認操作説明会はいつですか")
    for text in ("それはいつですか", "場所は？"):
        reply = ask(core, conversation, text)
        assert reply.sources[0].slug == "family-doctor-report-approval"
        assert reply.text.startswith("この催しは2026年1月27日に開催済みです。")


def test_a_full_new_question_changes_the_topic(core, conversation):
    ask(core, conversation, "日医ニュースを自宅に送ってほしい")
    assert ask(core, conversation, "医療機関マスタはいつ更新されますか").sources[0].slug == "institution-master-updates"


def test_a_short_question_that_names_its_subject_is_not_a_follow_up(core, conversation):
    ask(core, conversation, "医療機関マスタはいつ更新されますか")
    reply = ask(core, conversation, "連絡協議会はいつですか")
    assert reply.sources[0].slug == "liaison-council-2026"


@pytest.mark.parametrize("text, follow_up", [
    ("それはいつですか", True), ("電話番号は？", True), ("場所は？", True), ("会場はどこですか", True),
    ("開催日時は？", True), ("申込方法は？", True), ("その費用は", True), ("もっと詳しく", True),
    ("連絡協議会はいつですか", False), ("ますたはいつ", False), ("会員数は？", False),
    ("医療機関マスタはいつ更新されますか", False),
])
def test_what_counts_as_a_follow_up(text, follow_up):
    assert intents.is_follow_up(intents.fold(text)) is follow_up


# -- choices, unknown, the desk ----------------------------------------------------------------------


def test_pressing_a_choice_answers_that_article_directly(core, conversation, store):
    choices = Reply("もしかして", "choices", buttons=(Button("会員数", "kb:member-count", "MAMIS上の会員数"),),
                    choices=(ArticleChoice("member-count"),))
    reply = core.decide("MAMIS上の会員数", Asker(), history=[choices], choice_question="会員数")
    assert reply.kind == "answer" and reply.sources[0].slug == "member-count" and reply.confidence == 1.0
    assert "178,559" in reply.text


def test_an_article_payload_answers_that_article(core, conversation):
    reply = ask(core, conversation, ARTICLE_PAYLOAD + "member-csv-api")
    assert (reply.kind, reply.sources[0].slug, reply.confidence) == ("answer", "member-csv-api", 1.0)
    missing = ask(core, conversation, ARTICLE_PAYLOAD + "no-such-article")
    assert missing.kind == "unknown" and missing.actions == (DESK_ACTION,)


def test_unknown_question_says_so_offers_the_desk_and_is_logged(core, conversation, store):
    turn = core.reply(conversation, "パスワードを忘れた", Asker(role="staff"), "web")
    reply = turn.reply
    assert reply.kind == "unknown"
    assert reply.text == (
        "申し訳ありません。ご質問にお答えできる記事が見つかりませんでした。別の言葉で言い換えていただくか、"
        f"{DESK}へお問い合わせください。"
    )
    assert reply.actions == (DESK_ACTION,) and reply.sources == ()
    [row] = store.unanswered()
    assert row == {
        "id": 1, "conversation_id": conversation, "message_id": turn.question.id, "text": "パスワードを忘れた",
        "confidence": reply.confidence, "channel": "web", "asker_role": "staff", "created_at": "2026-11-25T10:00:00+09:00",
    }
    assert reply.confidence < 0.25


class BandSearcher:
    """Stands in for the search only to pin confidences at the band edges, which real questions
    cannot hold still while the ranking is tuned. Everything else in this file uses the real index."""

    def __init__(self, confidences):
        from kb.results import SearchResult

        self.results = [
            SearchResult(slug=f"a{i}", title=f"記事{i}", kind="faq", audience="all", updated="2026-01-15",
                         event_date=None, passage=f"本文{i}。", section=None, score=1.0 - i / 10, confidence=c)
            for i, c in enumerate(confidences)
        ]

    def search(self, query, k=5):
        return self.results[:k]


@pytest.mark.parametrize("confidences, kind, buttons", [
    ([0.5, 0.9], "answer", ()),
    ([0.49, 0.3, 0.1, 0.26, 0.25], "choices", ("記事0", "記事1", "記事3")),
    ([0.2, 0.6], "choices", ("記事1",)),
    ([0.24, 0.1], "unknown", ()),
    ([], "unknown", ()),
])
def test_confidence_bands(store, confidences, kind, buttons):
    core = Core(BandSearcher(confidences), store, lambda: TODAY, answer_at=0.5)
    reply = core.decide("なにか", Asker())
    assert reply.kind == kind
    assert tuple(b.label for b in reply.buttons) == buttons
    assert tuple(b.id for b in reply.buttons) == tuple(f"kb:a{b[-1]}" for b in buttons)  # the id names the article
    if kind == "choices":
        assert reply.text == "はっきりとお答えできる記事が見つかりませんでした。もしかして、次のいずれかについてのご質問でしょうか。"
        assert reply.actions == (DESK_ACTION,)
        assert reply.choices == tuple(ArticleChoice(f"a{b[-1]}") for b in buttons)


def test_choices_then_pressing_one_through_reply(store, searcher):
    """Through Core.reply: the stored choices reply maps the pressed title back to its article."""
    core = Core(searcher, store, lambda: TODAY)
    cid = core.open_conversation("test", Asker()).conversation.id
    choices = Reply("もしかして", "choices", buttons=(Button("会員数の記事", "choice:0"),),
                    choices=(ArticleChoice("member-count"),))
    store.save_turn(cid, "会員数の調査", choices, "2026-11-25T10:00:00+09:00")
    reply = ask(core, cid, "会員数の記事")  # a channel that sends the label as text
    assert reply.kind == "answer" and reply.sources[0].slug == "member-count"
    store.save_turn(cid, "会員数の調査", choices, "2026-11-25T10:00:01+09:00")
    turn = core.reply(cid, None, Asker(), "test", button="choice:0")  # a channel that sends the id alone
    assert (turn.question.text, turn.question.button) == ("会員数の記事", "choice:0")
    assert turn.reply.kind == "answer" and turn.reply.sources[0].slug == "member-count"


def test_a_stored_reply_of_the_old_form_still_loads_and_its_buttons_still_work(store, searcher):
    """Replies stored before typed choices kept string choices and {label, payload} buttons."""
    core = Core(searcher, store, lambda: TODAY)
    cid = core.open_conversation("test", Asker()).conversation.id
    old = {"text": "もしかして", "kind": "choices", "sources": [{"slug": "contact-desk", "title": "窓口",
                                                                 "url": "/kb/contact-desk", "updated": "2026-01-15"}],
           "buttons": [{"label": "会員数の記事", "payload": "会員数の記事"}],
           "actions": [{"type": "offer_escalation", "label": "担当者に問い合わせる", "payload": HANDOFF_PAYLOAD,
                        "desk": "MAMIS運営事務局", "phone": "0120-110-030"}],
           "confidence": 0.3, "topic": None, "choices": ["member-count"], "table": None, "redacted": None}
    loaded = Reply.from_dict(old)
    assert loaded == Reply("もしかして", "choices", sources=(Source("contact-desk", "窓口", "2026-01-15"),),
                           buttons=(Button("会員数の記事", "会員数の記事"),), actions=(DESK_ACTION,), confidence=0.3,
                           choices=(ArticleChoice("member-count"),))
    store.save_turn(cid, "会員数の調査", loaded, "2026-11-25T10:00:00+09:00")
    reply = core.reply(cid, None, Asker(), "test", button="会員数の記事").reply
    assert reply.kind == "answer" and reply.sources[0].slug == "member-count"


# -- validation, idempotency, storage -----------------------------------------------------------------------


def test_empty_and_oversized_messages_are_refused(core, conversation, store):
    for text in ("", "   \n\u3000"):
        with pytest.raises(EmptyMessage):
            core.reply(conversation, text, Asker(), "test")
    with pytest.raises(MessageTooLong) as e:
        core.reply(conversation, "あ" * 2001, Asker(), "test")
    assert (e.value.length, e.value.limit) == (2001, 2000)
    assert store.messages(conversation) == []
    longest = "あ" * 1999 + "？"  # exactly the limit: taken, and (it says nothing of MAMIS) out of scope
    turn = core.reply(conversation, longest, Asker(), "test")
    assert (turn.question.text, turn.reply.kind) == (longest, "out_of_scope")


def test_unknown_conversation(core):
    with pytest.raises(ConversationNotFound):
        core.reply("nope", "こんにちは", Asker(), "test")


def test_same_idempotency_key_is_stored_and_answered_once(core, conversation, store):
    first = core.reply(conversation, "会員数は？", Asker(), "web", idempotency_key="k-1")
    again = core.reply(conversation, "会員数は？", Asker(), "web", idempotency_key="k-1")
    assert (first.replayed, again.replayed) == (False, True)
    assert (again.question, again.answer) == (first.question, first.answer)
    assert len(store.messages(conversation)) == 2
    with pytest.raises(IdempotencyConflict):
        core.reply(conversation, "別の質問", Asker(), "web", idempotency_key="k-1")


def test_history_and_feedback_survive_reopening_the_database(tmp_path, searcher):
    path = tmp_path / "helpdesk.sqlite"
    store = Store(path)
    core = Core(searcher, store, lambda: TODAY)
    new = core.open_conversation("web", Asker())
    turn = core.reply(new.conversation.id, "会員数は？", Asker(), "web", idempotency_key="k")
    core.feedback(turn.answer.id, False, new.token)
    core.feedback(turn.answer.id, True, new.token)  # the last click counts
    store.close()

    reopened = Store(path)
    assert reopened.migrate() == []  # nothing applied twice
    assert reopened.applied_migrations() == [name for name, _statements in MIGRATIONS]
    assert reopened.applied_migrations()[:7] == [
        "0001_initial", "0002_staff_accounts", "0003_link_codes", "0004_redacted_transcripts",
        "0005_conversation_state", "0006_agent_messages", "0007_chat_identities"]
    messages = Core(searcher, reopened, lambda: TODAY).history(new.conversation.id, new.token)
    assert [(m.role, m.text[:5], m.feedback) for m in messages] == [
        ("user", "会員数は？", None), ("bot", turn.answer.text[:5], True)]
    assert messages[1].reply == turn.reply
    assert reopened.conversation(new.conversation.id, new.token).created_at == "2026-11-25T10:00:00+09:00"
    with pytest.raises(ConversationNotFound):
        reopened.conversation(new.conversation.id, "wrong-token")
    reopened.close()


def test_store_is_in_wal_mode_and_tokens_are_not_stored(store, core):
    new = core.open_conversation("web", Asker())
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    [row] = store.conn.execute("SELECT * FROM conversations").fetchall()
    assert new.token not in [str(v) for v in tuple(row)]
    assert len(new.conversation.id) >= 22 and len(new.token) >= 43


def test_unknown_role_is_refused():
    with pytest.raises(ValueError):
        Asker(role="admin")


# -- what an answer says once, and to whom ------------------------------------------------------------------


def test_an_article_without_a_date_answers_without_one(tmp_path, store):
    """Issue 9.4: an undated article (every article of a FAQ.jsonl source has no date)."""
    import json

    from kb.indexer import build_index
    from kb.search import Searcher

    faq = tmp_path / "FAQ.jsonl"
    faq.write_text(json.dumps({"id": "parking", "question": "駐車場の利用方法",
                               "answer": "来館者用の駐車場はありません。公共交通機関をご利用ください。"},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    report = build_index([faq], tmp_path / "kb.sqlite")
    assert not report.broken
    searcher = Searcher(tmp_path / "kb.sqlite")
    try:
        core = Core(searcher, store, lambda: TODAY)
        cid = core.open_conversation("test", Asker()).conversation.id
        for text in ("駐車場の利用方法", "kb:parking"):
            reply = ask(core, cid, text)
            assert (reply.kind, reply.sources) == ("answer", (Source("parking", "駐車場の利用方法", None),))
            assert reply.text == "来館者用の駐車場はありません。公共交通機関をご利用ください。"
    finally:
        searcher.close()


def test_a_closing_lead_into_nothing_is_left_out(core, conversation, searcher):
    """「以下は…で報告された内容です。」 announces what follows; when the passage ends there it goes."""
    [top] = searcher.search("会員数は？", k=1)
    assert top.passage.endswith("可能性があります。以下はMAMIS LETTER 第15号（2026年1月）で報告された内容です。")
    reply = ask(core, conversation, "会員数は？")
    assert reply.sources[0].slug == "member-count"
    assert reply.text == plain(top.passage)[:-len("以下はMAMIS LETTER 第15号（2026年1月）で報告された内容です。")]


@pytest.mark.parametrize("text", ["明日の天気を教えて", "今日の株価は？", "おすすめのラーメン屋"])
def test_a_question_outside_mamis_is_told_what_the_desk_answers(core, conversation, text):
    reply = ask(core, conversation, text)
    assert (reply.kind, reply.buttons, reply.actions) == ("out_of_scope", (), (DESK_ACTION,))
    assert reply.text.startswith("MAMISに関するご質問にお答えしています。") and DESK in reply.text


@pytest.mark.parametrize("text, out_of_domain, expected", [
    ("明日の天気を教えて", None, True),          # no signal from the search: the topic words decide
    ("日医ニュースの天気", None, False),          # a word of MAMIS's own world wins
    ("パスワードを忘れた", True, False),          # about MAMIS, even if the search finds nothing of it
    ("英語で話せますか", True, True),            # the search's signal, no topic word needed
    ("明日の天気を教えて", False, False),        # the search's signal decides when it gives one
])
def test_what_counts_as_out_of_scope(text, out_of_domain, expected):
    assert intents.is_out_of_scope(intents.fold(text), out_of_domain) is expected


def test_a_staff_article_tells_members_and_the_public_whom_it_was_written_for(core, conversation):
    question = "医療機関マスタはいつ更新されますか"  # institution-master-updates: audience staff
    note = "※この記事は医師会事務局の職員向けに書かれています。"
    for asker in (Asker(), Asker(role="member", member_number="1300001", account="telegram:1")):
        reply = ask(core, core.open_conversation("test", asker).conversation.id, question, asker)
        assert reply.sources[0].slug == "institution-master-updates" and reply.text.endswith("\n\n" + note)
    staff = Asker(role="staff", association_code="13001", association_level="county", account="chiyoda")
    reply = ask(core, core.open_conversation("test", staff).conversation.id, question, staff)
    assert note not in reply.text
    everyone = ask(core, conversation, "日医ニュースの送付先を自宅に変更したい")  # audience all
    assert note not in everyone.text


def test_after_an_unhelpful_answer_the_next_step_is_offered_once(core, store):
    new = core.open_conversation("test", Asker())
    turn = core.reply(new.conversation.id, "雑誌の送り先を勤務先にしたい", Asker(), "test")
    assert turn.reply.kind == "answer"
    core.feedback(turn.answer.id, False, new.token)
    step = core.next_step(turn.answer.id, new.token)
    assert step.reply.kind == "next_step" and step.in_reply_to == turn.answer.id
    assert step.reply.text.startswith("お役に立てず申し訳ありません。") and DESK in step.reply.text
    assert turn.reply.topic not in [c.slug for c in step.reply.choices]
    assert step.reply.actions == (DESK_ACTION,)
    assert core.next_step(turn.answer.id, new.token) == step  # a second click: the same message
    if step.reply.buttons:  # a 「もしかして」 article from the next step answers when pressed
        pressed = core.reply(new.conversation.id, None, Asker(), "test", button=step.reply.buttons[0].id).reply
        assert (pressed.kind, pressed.sources[0].slug) == ("answer", step.reply.choices[0].slug)
    with pytest.raises(ConversationNotFound):
        core.next_step(turn.answer.id, "wrong-token")


def test_only_answers_are_rated(core, store):
    from bot import NotAReply

    new = core.open_conversation("test", Asker())
    unknown = core.reply(new.conversation.id, "パスワードを忘れた", Asker(), "test")
    assert unknown.reply.kind == "unknown"
    with pytest.raises(NotAReply):
        core.feedback(unknown.answer.id, False, new.token)
    with pytest.raises(NotAReply):
        core.next_step(unknown.answer.id, new.token)
