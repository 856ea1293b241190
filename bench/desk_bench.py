"""Benchmark of the operations desk over HTTP: the console's queue and ticket pages with many tickets,
making a ticket, and the widget's poll for an agent's reply.

    python bench/desk_bench.py [--tickets 50000] [--requests 300] [--json]

Builds a temporary instance (index from kb/articles and release_notes), fills it with `--tickets`
tickets (each with its conversation, two messages and an audit event, spread over 90 days, every
state, both channels, 60 associations) in one bulk transaction, starts `helpdesk serve` (gunicorn,
2 workers × 4 threads) on a free port, signs an agent in, and times one client's sequential requests:

- queue: GET /desk/ with the default filter and with each filter (state, channel, association, age,
  assignee), and the polling script's GET /desk/queue/rows;
- ticket: GET /desk/tickets/<n> for random tickets;
- create: POST /api/conversations/<id>/handoff on fresh conversations that asked one question;
- poll: GET /api/conversations/<id>/messages?after=<id> on a conversation an agent answered.

Baseline in the same run: GET /api/health (no database), the server's floor on this machine.
JSON keys: queue_p99_ms, ticket_p99_ms, create_ticket_p99_ms, poll_p99_ms (and p50s, baseline_p99_ms,
tickets, errors). Target: each p99 < 50 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402

PASSWORD = "bench-password-2026"
NOW = "2026-11-25T10:00:00+09:00"
STATES = ("new", "open", "pending", "resolved", "closed")
CONVERSATION_STATE = {"new": "waiting_desk", "open": "with_agent", "pending": "with_agent", "resolved": "closed",
                      "closed": "closed"}


def seed(db: Path, n: int, rng: random.Random) -> None:
    """`n` tickets with their conversations, messages and events, in one transaction."""
    from datetime import datetime, timedelta

    from bot import Store
    from bot.accounts.agents import AgentAccounts

    store = Store(db)
    agents = AgentAccounts(store)
    agents.add_agent("bench", "運営事務局 ベンチ", PASSWORD, NOW)
    agents.add_agent("other", "運営事務局 ほか", PASSWORD, NOW)
    store.close()
    now = datetime.fromisoformat(NOW)
    conn = sqlite3.connect(db)
    conn.execute("BEGIN")
    conversations, messages, tickets, events = [], [], [], []
    for i in range(n):
        cid = f"bench{i:07d}"
        state = rng.choice(STATES)
        at = (now - timedelta(minutes=rng.randrange(90 * 24 * 60))).isoformat(timespec="seconds")
        channel = rng.choice(("web", "web", "telegram"))
        code = f"13{rng.randrange(1, 61):03d}"
        question = f"ベンチマークの質問 {i} について教えてください"
        conversations.append((cid, "x", channel, "staff", at, CONVERSATION_STATE[state]))
        messages.append((2 * i + 1, cid, "user", question, None, at, question))
        messages.append((2 * i + 2, cid, "bot", "お答えできる記事が見つかりませんでした。", '{"text": "", "kind": "unknown"}',
                         at, "お答えできる記事が見つかりませんでした。"))
        transcript = json.dumps([{"id": 2 * i + 1, "role": "user", "text": question, "at": at, "kind": None,
                                  "author": None}], ensure_ascii=False)
        tickets.append((1001 + i, cid, state, rng.choice(("low", "normal", "normal", "high")),
                        rng.choice((None, "bench", "other")) if state != "new" else None, channel, "staff",
                        code, f"ベンチ医師会{code}", "button", question[:80], transcript, "[]",
                        json.dumps([question], ensure_ascii=False), 2 * i + 2, at, at))
        events.append((1001 + i, at, "user", "created", "{}"))
    conn.executemany("INSERT INTO conversations (id, token_hash, channel, asker_role, created_at, state) "
                     "VALUES (?, ?, ?, ?, ?, ?)", conversations)
    conn.executemany("INSERT INTO messages (id, conversation_id, role, text, reply, created_at, redacted) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", messages)
    conn.executemany("INSERT INTO tickets (number, conversation_id, state, priority, assignee, channel, asker_role, "
                     "association_code, association_name, reason, subject, transcript, articles, unfound, "
                     "start_message_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                     "?, ?, ?)", tickets)
    conn.executemany("INSERT INTO ticket_events (ticket_number, at, actor, kind, detail) VALUES (?, ?, ?, ?, ?)",
                     events)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def prepare_instance(instance: Path) -> Path:
    """A fresh instance folder with the shipped articles indexed, the clock fixed at NOW and rate limits
    out of the way of the timed requests (this benchmark's and live_bench's)."""
    from handlers.cli.main import DEFAULT_SOURCES
    from kb.indexer import build_index

    instance.mkdir()
    build_index(list(DEFAULT_SOURCES), instance / "kb.sqlite")
    (instance / "config.toml").write_text(
        f'NOW = "{NOW}"\nMESSAGE_RATE_LIMIT = "100000 per minute"\nCONVERSATION_RATE_LIMIT = "100000 per minute"\n'
        'SIGN_IN_RATE_LIMIT = "1000 per minute"\n', encoding="utf-8")
    return instance


def start_server(instance: Path):
    """`helpdesk serve` on a port it picks (port 0) and prints; returns (process, base URL, log)."""
    from handlers.server.command import started_url

    log = tempfile.NamedTemporaryFile("w+", prefix="desk-bench-", suffix=".log", delete=False)
    cmd = [sys.executable, "-m", "handlers.server.main", "--instance", str(instance), "serve", "--host", "127.0.0.1",
           "--port", "0", "--server", "gunicorn", "--workers", "2", "--threads", "4"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{Path(log.name).read_text()}")
        url = started_url(Path(log.name).read_text())
        try:
            if url and httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc, url, log
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"server did not start:\n{Path(log.name).read_text()}")


def timed(samples: list[float], errors: list[str], call, ok=(200,)) -> httpx.Response | None:
    start = time.perf_counter()
    try:
        response = call()
    except httpx.TransportError as e:
        errors.append(type(e).__name__)
        return None
    samples.append((time.perf_counter() - start) * 1000)
    if response.status_code not in ok:
        errors.append(str(response.status_code))
    return response


def measure(url: str, tickets: int, requests: int, rng: random.Random) -> dict:
    import re

    errors: list[str] = []
    samples: dict[str, list[float]] = {k: [] for k in ("baseline", "queue", "ticket", "create", "poll")}
    agent = httpx.Client(base_url=url, timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', agent.get("/desk/login").text).group(1)
    agent.post("/desk/login", data={"login_id": "bench", "password": PASSWORD, "csrf_token": token})
    user = httpx.Client(base_url=url, timeout=30)
    fresh = []
    for _ in range(requests):
        created = user.post("/api/conversations", json={}).json()
        headers = {"Authorization": f"Bearer {created['token']}"}
        user.post(f"/api/conversations/{created['id']}/messages", json={"text": "ぴよぴよほげほげ"}, headers=headers)
        fresh.append((created["id"], headers))
    # One conversation an agent answers, polled by its widget.
    polled_id, polled_headers = fresh.pop()
    number = user.post(f"/api/conversations/{polled_id}/handoff", json={}, headers=polled_headers).json()["ticket"]["number"]
    page = agent.get(f"/desk/tickets/{number}").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    agent.post(f"/desk/tickets/{number}/messages", data={"text": "担当です", "action": "reply", "csrf_token": token})
    last = user.get(f"/api/conversations/{polled_id}/messages", headers=polled_headers).json()[-2]["id"]

    queue_paths = ["/desk/", "/desk/?state=all", "/desk/?state=new", "/desk/?channel=telegram",
                   "/desk/?association=13001", "/desk/?age=24h", "/desk/?assignee=none", "/desk/?assignee=bench",
                   "/desk/?state=all&page=20", "/desk/queue/rows"]
    for warm in range(20):  # both workers: connections, caches, templates
        agent.get(queue_paths[warm % len(queue_paths)])
        agent.get(f"/desk/tickets/{1001 + warm}")
    for i in range(requests):
        timed(samples["baseline"], errors, lambda: agent.get("/api/health"))
        timed(samples["queue"], errors, lambda: agent.get(queue_paths[i % len(queue_paths)],
                                                          headers={"X-Requested-With": "fetch"}))
        timed(samples["ticket"], errors, lambda: agent.get(f"/desk/tickets/{rng.randrange(1001, 1001 + tickets)}"))
        cid, headers = fresh[i % len(fresh)]
        timed(samples["create"], errors, lambda: user.post(f"/api/conversations/{cid}/handoff", json={},
                                                           headers=headers), ok=(200, 201))
        timed(samples["poll"], errors, lambda: user.get(f"/api/conversations/{polled_id}/messages?after={last}",
                                                        headers=polled_headers))
    agent.close()
    user.close()
    result = {"tickets": tickets, "requests": requests}
    for key, name in (("queue", "queue"), ("ticket", "ticket"), ("create", "create_ticket"), ("poll", "poll"),
                      ("baseline", "baseline")):
        result[f"{name}_p50_ms"] = round(percentile(samples[key], 50), 2)
        result[f"{name}_p99_ms"] = round(percentile(samples[key], 99), 2)
    result["errors"] = len(errors)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=50_000, help="tickets in the database")
    parser.add_argument("--requests", type=int, default=300, help="timed requests of each kind")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        instance = prepare_instance(Path(tmp) / "instance")
        from bot import Store

        Store(instance / "helpdesk.sqlite").close()  # migrations
        started = time.perf_counter()
        seed(instance / "helpdesk.sqlite", args.tickets, rng)
        seeded = time.perf_counter() - started
        proc, url, log = start_server(instance)
        try:
            result = measure(url, args.tickets, args.requests, rng)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            log.close()
            os.unlink(log.name)
    result["seed_s"] = round(seeded, 1)
    if args.json:
        print(json.dumps(result))
        return result
    print(f"desk benchmark: {args.tickets} tickets (seeded in {seeded:.1f} s), {args.requests} requests each, "
          f"gunicorn 2×4")
    print(f"{'':<26}{'p50 ms':>10}{'p99 ms':>10}")
    for label, name in (("queue page /desk/", "queue"), ("ticket page", "ticket"), ("create ticket (handoff)",
                        "create_ticket"), ("widget poll ?after=", "poll"), ("baseline /api/health", "baseline")):
        print(f"{label:<26}{result[name + '_p50_ms']:>10}{result[name + '_p99_ms']:>10}")
    print(f"errors: {result['errors']}   target: each p99 < 50 ms")
    return result


if __name__ == "__main__":
    main()
