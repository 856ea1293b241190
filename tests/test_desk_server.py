"""The desk against a real server process: SIGKILL during ticket creation, and two agents at once.

`helpdesk serve` runs under gunicorn in its own process group on a free port (tests/conftest.py); the
database is checked directly with sqlite3 while the server is dead, so what is seen is exactly what a
killed process left behind.
"""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading

import httpx
import pytest

from tests.conftest import ServerProcess, build_instance
from tests.desk_support import add_agents, body, conversation, csrf_of

pytestmark = [pytest.mark.server, pytest.mark.slow]  # real gunicorn processes, killed and restarted

UNANSWERABLE = "ぴよぴよほげほげ"


@pytest.fixture
def served(tmp_path):
    instance = build_instance(tmp_path / "served")
    add_agents(instance)
    servers: list[ServerProcess] = []

    def start(port=None) -> ServerProcess:
        servers.append(ServerProcess(instance.path, workers=2, threads=4).start(port=port))
        return servers[-1]

    yield instance, start
    for server in servers:
        server.stop()


def kill(server: ServerProcess) -> None:
    """SIGKILL the whole process group: the gunicorn master and every worker, mid-request."""
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    server.log.close()
    os.unlink(server.log.name)
    server.log, server.proc = None, None


def check_whole(db_path) -> dict[str, int]:
    """Every ticket is whole and every conversation without one is untouched; returns cid → number."""
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tickets = dict(conn.execute("SELECT conversation_id, number FROM tickets"))
        for cid, state in conn.execute("SELECT id, state FROM conversations"):
            confirmations = conn.execute(
                "SELECT text FROM messages WHERE conversation_id = ? AND json_extract(reply, '$.kind') = 'ticket'",
                (cid,)).fetchall()
            if cid in tickets:
                number = tickets[cid]
                assert state == "waiting_desk", (cid, state)
                assert [t for (t,) in confirmations if f"#{number}" in t] and len(confirmations) == 1
                events = conn.execute("SELECT kind FROM ticket_events WHERE ticket_number = ?", (number,)).fetchall()
                assert events == [("created",)]
            else:
                assert state == "bot" and confirmations == [], (cid, state)
        return tickets
    finally:
        conn.close()


def test_sigkill_during_ticket_creation_never_leaves_half_a_ticket(served):
    """Four clients ask for tickets back to back; the server is killed right after the N-th answer of
    the round (N drawn 1..5, so the other clients' requests are in flight), restarted, and killed
    again, round after round. Counting answers rather than sleeping keeps the kills inside the work
    however slow the machine is."""
    instance, start = served
    server = start()
    port = int(server.url.rsplit(":", 1)[1])
    with httpx.Client(base_url=server.url, timeout=10) as client:
        convs = [conversation(client, UNANSWERABLE) for _ in range(120)]
    received: dict[str, int] = {}
    rng = random.Random(13)
    made: list[int] = []  # tickets after each kill
    for _round in range(8):
        queue = [c for c in convs if c[0] not in received]
        lock = threading.Lock()
        answered_this_round = [0]
        kill_after = rng.randint(1, 5)
        enough = threading.Event()

        def ask():
            while True:
                with lock:
                    if not queue:
                        return
                    cid, headers = queue.pop()
                try:
                    r = httpx.post(f"{server.url}/api/conversations/{cid}/handoff", json={}, headers=headers,
                                   timeout=5)
                except httpx.TransportError:
                    return  # killed before it answered
                if r.status_code in (200, 201):
                    received[cid] = r.json()["ticket"]["number"]
                    with lock:
                        answered_this_round[0] += 1
                        if answered_this_round[0] >= kill_after:
                            enough.set()

        for cid, headers in convs[:8]:  # warm both workers up (the core is built on first use)
            httpx.get(f"{server.url}/api/conversations/{cid}/messages", headers=headers, timeout=30)
        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        assert enough.wait(60), "no ticket was answered in a minute"
        kill(server)
        for t in threads:
            t.join()
        tickets = check_whole(instance.helpdesk_db)
        made.append(len(tickets))
        for cid, number in received.items():  # a ticket the user was told about is never lost
            assert tickets[cid] == number
        server = start(port)
    # The kills fell while tickets were being made: rounds made some, and work was always left over.
    grew = [b > a for a, b in zip([0] + made, made)]
    assert sum(grew) >= 2 and made[-1] < len(convs), made
    # After the last restart every conversation asks once more: exactly one ticket each, numbers unique.
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for cid, headers in convs:
            r = client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
            assert r.status_code in (200, 201)
    tickets = check_whole(instance.helpdesk_db)
    assert len(tickets) == len(convs) and len(set(tickets.values())) == len(convs)
    assert set(tickets.values()) == set(range(1001, 1001 + len(convs)))
    print("tickets after each kill:", made)


def agent_client(url: str, login_id: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=10)
    token = csrf_of(client.get("/desk/login").text)
    r = client.post("/desk/login", data={"login_id": login_id, "password": "desk-password-2026", "csrf_token": token})
    assert r.status_code == 303
    return client


def test_two_agents_replying_at_once_lose_nothing_and_one_claims(served):
    instance, start = served
    server = start()
    with httpx.Client(base_url=server.url, timeout=10) as user:
        chats = [conversation(user, UNANSWERABLE) for _ in range(6)]
        numbers = [body(user.post(f"/api/conversations/{cid}/handoff", json={}, headers=h))["ticket"]["number"]
                   for cid, h in chats]
    agents = {login: agent_client(server.url, login) for login in ("yamada", "sato")}
    tokens = {login: csrf_of(c.get(f"/desk/tickets/{numbers[0]}").text) for login, c in agents.items()}
    for number in numbers:
        barrier = threading.Barrier(2)
        results = {}

        def reply(login):
            barrier.wait()
            results[login] = agents[login].post(f"/desk/tickets/{number}/messages", data={
                "text": f"{login}からの返信", "action": "reply", "csrf_token": tokens[login]}).status_code

        threads = [threading.Thread(target=reply, args=(login,)) for login in agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {"yamada": 303, "sato": 303}
    conn = sqlite3.connect(instance.helpdesk_db)
    for (cid, headers), number in zip(chats, numbers):
        texts = sorted(t for (t,) in conn.execute(
            "SELECT text FROM messages WHERE conversation_id = ? AND role = 'agent'", (cid,)))
        assert texts == ["satoからの返信", "yamadaからの返信"]
        assignee, state = conn.execute("SELECT assignee, state FROM tickets WHERE number = ?", (number,)).fetchone()
        assert assignee in ("yamada", "sato") and state == "pending"
        claims = conn.execute("SELECT actor FROM ticket_events WHERE ticket_number = ? AND kind = 'assign'",
                              (number,)).fetchall()
        assert claims == [(assignee,)]
        polled = httpx.get(f"{server.url}/api/conversations/{cid}/messages?after=0", headers=headers).json()
        assert sorted(m["text"] for m in polled if m["role"] == "agent") == texts
    conn.close()
    for c in agents.values():
        c.close()
