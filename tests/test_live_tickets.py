"""What a ticket is about and what belongs to it (issue 23): the subject is the user's real question,
the unanswered questions are listed, a resolved ticket stops collecting the chat, a new ticket of the
same conversation links the old one, and 「新しい質問」 during a ticket is told to the desk."""
from __future__ import annotations

import pytest

from bot import Message, Reply
from bot.desk.handoff import snapshot
from tests.desk_support import add_agents, conversation, csrf_of, sign_in

UNANSWERABLE = "ぴよぴよほげほげ"


@pytest.fixture
def desk_client(app, instance):
    add_agents(instance)
    return app.test_client()


def ticket_of(client, cid, auth) -> int:
    return client.post(f"/api/conversations/{cid}/handoff", json={}, headers=auth).json["ticket"]["number"]


def act(client, number, path, **form):
    token = csrf_of(client.get(f"/desk/tickets/{number}").text)
    response = client.post(f"/desk/tickets/{number}/{path}", data={**form, "csrf_token": token})
    assert response.status_code == 303, response.text


def test_the_subject_is_the_last_real_question_not_the_request_for_a_person(desk_client):
    cid, auth = conversation(desk_client, UNANSWERABLE, "担当者と話したい")
    offer = desk_client.get(f"/api/conversations/{cid}/messages", headers=auth).json[-1]
    confirm = next(b for b in offer["buttons"] if b["id"].startswith("handoff:yes"))
    desk_client.post(f"/api/conversations/{cid}/messages", json={"button": confirm["id"], "text": confirm["label"]},
                     headers=auth)
    assert sign_in(desk_client).status_code == 303
    page = desk_client.get("/desk/tickets/1001").text
    assert f"<h1>#1001 {UNANSWERABLE}</h1>" in page
    assert "<h3>記事が見つからなかった質問</h3>\n  <ul><li>ぴよぴよほげほげ</li></ul>" in page


def test_no_clear_answer_and_an_unhelpful_answer_count_as_unanswered_each_once():
    def m(i, role, text, kind=None, button=None):
        return Message(i, "c", role, text, "2026-11-25T10:00:00+09:00", button=button,
                       reply=Reply(text, kind) if kind else None), None

    snap = snapshot([
        m(1, "user", "会員証の再発行"), m(2, "bot", "はっきりとお答えできる記事が見つかりませんでした。", "choices"),
        m(3, "user", "医療機関マスタの反映"), m(4, "bot", "…", "answer"), m(5, "bot", "ほかの記事…", "next_step"),
        m(6, "user", "会員証の再発行"), m(7, "bot", "…", "unknown"),
        m(8, "user", "担当者に問い合わせる", button="handoff:yes:button"), m(9, "user", "/human"),
    ], lambda t: t)
    assert snap["unfound"] == ["会員証の再発行", "医療機関マスタの反映"]
    assert snap["questions"] == ["会員証の再発行", "医療機関マスタの反映", "会員証の再発行"]


def test_a_resolved_ticket_stops_collecting_and_the_next_ticket_links_it(desk_client):
    cid, auth = conversation(desk_client, UNANSWERABLE)
    first = ticket_of(desk_client, cid, auth)
    assert sign_in(desk_client).status_code == 303
    act(desk_client, first, "messages", text="担当の山田です。", action="reply")
    desk_client.post(f"/api/conversations/{cid}/messages", json={"text": "ありがとうございました"}, headers=auth)
    act(desk_client, first, "state", to="resolve")
    later = desk_client.post(f"/api/conversations/{cid}/messages", json={"text": "日医ニュースの送付先を変えたい"},
                             headers=auth)
    assert later.json["reply"]["kind"] != "desk_ack"  # a fresh bot turn
    page = desk_client.get(f"/desk/tickets/{first}").text
    assert "ありがとうございました" in page and "担当者が対応を終了しました" in page
    assert "日医ニュースの送付先を変えたい" not in page.split('id="h-thread"')[1]
    second = ticket_of(desk_client, cid, auth)
    assert second == first + 1
    page = desk_client.get(f"/desk/tickets/{second}").text
    assert f'<a href="/desk/tickets/{first}">#{first}</a>' in page
    assert "担当の山田です。" not in page.split('id="h-thread"')[1]


def test_a_new_question_during_a_ticket_is_told_to_the_desk_and_the_ticket_stays(desk_client):
    cid, auth = conversation(desk_client, UNANSWERABLE)
    number = ticket_of(desk_client, cid, auth)
    told = desk_client.post(f"/api/conversations/{cid}/new-question", json={}, headers=auth)
    assert told.status_code == 200 and told.json["ticket"]["number"] == number
    assert desk_client.post(f"/api/conversations/{cid}/new-question", json={},
                            headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert sign_in(desk_client).status_code == 303
    page = desk_client.get(f"/desk/tickets/{number}").text
    assert "利用者がチャットで「新しい質問」を始めました" in page
    # The agent's reply still reaches the user's (old) conversation.
    act(desk_client, number, "messages", text="山田です。先ほどの件です。", action="reply")
    news = desk_client.get(f"/api/conversations/{cid}/messages?after=0", headers=auth).json
    assert news[-1]["role"] == "agent" and news[-1]["text"] == "山田です。先ほどの件です。"
    # Without an unfinished ticket there is nothing to tell.
    other, other_auth = conversation(desk_client, "日医ニュースの送付先")
    assert desk_client.post(f"/api/conversations/{other}/new-question", json={},
                            headers=other_auth).json == {"ticket": None}


def test_the_ticket_page_is_told_the_state_its_label_and_whether_it_is_unfinished(desk_client):
    """The console's script keeps no list of ticket states: the page and /live say them (bot/desk/tickets.py),
    and the reopen and close buttons show for a resolved ticket only."""
    import re
    from pathlib import Path

    from bot.desk.tickets import STATE_JA

    cid, auth = conversation(desk_client, UNANSWERABLE)
    number = ticket_of(desk_client, cid, auth)
    assert sign_in(desk_client).status_code == 303
    page = desk_client.get(f"/desk/tickets/{number}").text
    assert 'data-state="new" data-active="true"' in page and 'value="reopen"' not in page
    act(desk_client, number, "state", to="resolve")
    page = desk_client.get(f"/desk/tickets/{number}").text
    assert 'data-state="resolved" data-active="false"' in page
    assert 'value="reopen"' in page and 'value="close"' in page
    after, event = re.search(r'data-after="(\d+)" data-event="(\d+)"', page).groups()
    live = desk_client.get(f"/desk/tickets/{number}/live?after={after}&event=0&wait=0",
                           headers={"X-Requested-With": "fetch"}).json
    assert (live["state"], live["state_ja"], live["active"]) == ("resolved", "解決済み", False)
    for script in (Path(__file__).parent.parent / "handlers" / "static" / "desk").glob("*.js"):
        text = script.read_text(encoding="utf-8")
        assert not [label for label in STATE_JA.values() if label in text], script
