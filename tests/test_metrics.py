"""What /metrics says after real conversations through the app: each reply counted under its outcome,
every search timed, and no question text or identifier in any label."""
from __future__ import annotations

import re


def sample(text: str, name: str, **labels) -> float:
    """The value of one series in Prometheus' text format (0 when it is not there yet)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if m and ",".join(sorted((m.group(1) or "").split(","))) == want:
            return float(m.group(2))
    return 0.0


def ask(client, text):
    created = client.post("/api/conversations").get_json()
    auth = {"Authorization": f"Bearer {created['token']}"}
    r = client.post(f"/api/conversations/{created['id']}/messages", json={"text": text}, headers=auth)
    assert r.status_code == 201
    return r.get_json()["reply"]["kind"]


def test_replies_are_counted_by_outcome_and_searches_are_timed(client):
    before = client.get("/metrics").get_data(as_text=True)
    kinds = [ask(client, "日医ニュースの送付先を自宅に変更したい"), ask(client, "明日の天気を教えて"),
             ask(client, "担当者と話したい")]
    assert kinds == ["answer", "out_of_scope", "handoff_offer"]
    after = client.get("/metrics").get_data(as_text=True)

    def grew(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("helpdesk_messages_total", channel="web") == 3
    assert [grew("helpdesk_answers_total", channel="web", outcome=o) for o in ("answered", "unknown", "handoff")] \
        == [1, 1, 1]
    assert grew("helpdesk_search_seconds_count") >= 2  # the answer and the out-of-scope question searched
    assert "天気" not in after and "送付先" not in after


def test_every_ticket_opened_is_counted_once(client):
    """By the chat's own buttons and by the API's handoff; asking again for the same ticket is not a new one."""
    before = client.get("/metrics").get_data(as_text=True)
    created = client.post("/api/conversations").get_json()
    auth = {"Authorization": f"Bearer {created['token']}"}
    url = f"/api/conversations/{created['id']}/messages"
    offer = client.post(url, json={"text": "担当者と話したい"}, headers=auth).get_json()["reply"]
    confirm = next(b["id"] for b in offer["buttons"] if b["id"].startswith("handoff:"))
    assert client.post(url, json={"button": confirm}, headers=auth).get_json()["reply"]["kind"] == "ticket"
    other = client.post("/api/conversations").get_json()
    other_auth = {"Authorization": f"Bearer {other['token']}"}
    statuses = [client.post(f"/api/conversations/{c['id']}/handoff", json={}, headers=h).status_code
                for c, h in ((created, auth), (other, other_auth), (other, other_auth))]
    assert statuses == [200, 201, 200]
    after = client.get("/metrics").get_data(as_text=True)
    assert sample(after, "helpdesk_escalations_total", channel="web") \
        - sample(before, "helpdesk_escalations_total", channel="web") == 2
