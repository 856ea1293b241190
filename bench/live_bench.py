"""Benchmark of the live conversation: how fast news reaches a held request, and what held requests cost.

    python bench/live_bench.py [--widgets 50] [--rounds 100] [--json]

Builds a temporary instance, starts `helpdesk serve` with its defaults (gunicorn, 2 workers × 4 threads,
LIVE_WAITS 100 per worker), hands `--widgets` web conversations to the desk, and keeps each one's
widget request held (`GET …/messages?after=<last>&wait=25`, asked again at once, as desk-poll.js does).
Then, one round at a time:

- agent_reply: an agent replies on the console (POST /desk/tickets/<n>/messages) to a random one of
  those tickets; timed from the reply's POST being sent to the held widget request answering with it
  (the target: p99 < 1 s);
- ticket_page: the ticket page's held request (/desk/tickets/<n>/live) is waiting while the user
  writes (POST …/messages); timed from the POST being sent to the ticket page's answer carrying it
  (the target: p99 < 2 s);
- chat: a question to the bot (POST …/messages on a conversation the bot holds), timed with the
  widgets held, and as a baseline in the same run before any widget waits.

Capacity: `--capacity N` also opens N held requests at once (beyond the widgets) and counts how many the
server really held (answered after ≥ 20 s) against those answered at once (every slot taken), and
times chat questions meanwhile.

JSON keys: agent_reply_p50_ms, agent_reply_p99_ms, ticket_page_p50_ms, ticket_page_p99_ms,
chat_p50_ms, chat_p99_ms, chat_baseline_p50_ms, chat_baseline_p99_ms, widgets, errors (and with
--capacity: capacity_asked, capacity_held, capacity_at_once, capacity_chat_p99_ms).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.desk_bench import NOW, PASSWORD, prepare_instance, start_server  # noqa: E402
from bench.stats import percentile  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LIVE = re.compile(r'data-live="([^"]+)"\s+data-after="(\d+)" data-event="(\d+)"')
QUESTIONS = ("日医ニュースの送付先を変えたい", "医療機関マスタの更新はいつですか", "会員情報のAPI連携について")


class Widget(threading.Thread):
    """One widget's held request, asked again at once; `arrived[text]` is when an agent's text came."""

    def __init__(self, url: str, cid: str, token: str, after: int, stop: threading.Event, errors: list):
        super().__init__(daemon=True)
        self.url, self.cid, self.after, self.stop, self.errors = url, cid, after, stop, errors
        self.headers = {"Authorization": f"Bearer {token}"}
        self.arrived: dict[str, float] = {}

    def run(self):
        with httpx.Client(base_url=self.url, timeout=40) as http:
            while not self.stop.is_set():
                try:
                    r = http.get(f"/api/conversations/{self.cid}/messages?after={self.after}&wait=25", headers=self.headers)
                except httpx.TransportError as e:
                    self.errors.append(type(e).__name__)
                    continue
                if r.status_code != 200:
                    self.errors.append(str(r.status_code))
                    time.sleep(1)
                    continue
                now = time.perf_counter()
                for m in r.json():
                    self.after = max(self.after, m["id"])
                    if m["role"] == "agent":
                        self.arrived[m["text"]] = now


def handed_over(http: httpx.Client) -> tuple[str, str, int, int]:
    created = http.post("/api/conversations", json={}).json()
    cid, auth = created["id"], {"Authorization": f"Bearer {created['token']}"}
    http.post(f"/api/conversations/{cid}/messages", json={"text": "ぴよぴよほげほげ"}, headers=auth)
    number = http.post(f"/api/conversations/{cid}/handoff", json={}, headers=auth).json()["ticket"]["number"]
    last = http.get(f"/api/conversations/{cid}/messages", headers=auth).json()[-1]["id"]
    return cid, created["token"], number, last


def chat_times(http: httpx.Client, n: int, errors: list) -> list[float]:
    created = http.post("/api/conversations", json={}).json()
    auth = {"Authorization": f"Bearer {created['token']}"}
    out = []
    for i in range(n):
        start = time.perf_counter()
        r = http.post(f"/api/conversations/{created['id']}/messages", json={"text": QUESTIONS[i % len(QUESTIONS)]},
                      headers=auth)
        out.append((time.perf_counter() - start) * 1000)
        if r.status_code != 201:
            errors.append(str(r.status_code))
    return out


def stats(prefix: str, samples: list[float]) -> dict:
    return {f"{prefix}_p50_ms": round(percentile(samples, 50), 1), f"{prefix}_p99_ms": round(percentile(samples, 99), 1)}


def measure(url: str, widgets: int, rounds: int, capacity: int, rng: random.Random) -> dict:
    errors: list[str] = []
    stop = threading.Event()
    with httpx.Client(base_url=url, timeout=40) as http, httpx.Client(base_url=url, timeout=40) as desk:
        token = CSRF.search(desk.get("/desk/login").text).group(1)
        desk.post("/desk/login", data={"login_id": "bench", "password": PASSWORD, "csrf_token": token})
        chat_times(http, 20, errors)  # warm both workers
        baseline = chat_times(http, rounds, errors)
        convs = [handed_over(http) for _ in range(widgets)]
        held = [Widget(url, cid, tok, last, stop, errors) for cid, tok, _, last in convs]
        for w in held:
            w.start()
        time.sleep(2)

        reply_ms = []
        for i in range(rounds):
            k = rng.randrange(widgets)
            number, text = convs[k][2], f"ベンチの返信 {i}"
            page = desk.get(f"/desk/tickets/{number}").text
            token = CSRF.search(page).group(1)
            sent = time.perf_counter()
            desk.post(f"/desk/tickets/{number}/messages", data={"text": text, "action": "reply", "csrf_token": token})
            deadline = time.perf_counter() + 10
            while text not in held[k].arrived and time.perf_counter() < deadline:
                time.sleep(0.002)
            if text in held[k].arrived:
                reply_ms.append((held[k].arrived[text] - sent) * 1000)
            else:
                errors.append("reply never arrived")

        page_ms = []
        for i in range(rounds):
            cid, tok, number, _ = convs[rng.randrange(widgets)]
            live, after, event = LIVE.search(desk.get(f"/desk/tickets/{number}").text).groups()
            text = f"利用者の補足 {i}"
            result = {}

            def hold():
                r = desk.get(f"{live}?after={after}&event={event}&wait=25", headers={"X-Requested-With": "fetch"})
                result["at"], result["items"] = time.perf_counter(), r.json()["items"]

            waiter = threading.Thread(target=hold)
            waiter.start()
            time.sleep(0.05)
            sent = time.perf_counter()
            http.post(f"/api/conversations/{cid}/messages", json={"text": text},
                      headers={"Authorization": f"Bearer {tok}"})
            waiter.join(30)
            if text in result.get("items", ""):
                page_ms.append((result["at"] - sent) * 1000)
            else:
                errors.append("user message never reached the ticket page")

        chat = chat_times(http, rounds, errors)
        out = {"widgets": widgets, **stats("agent_reply", reply_ms), **stats("ticket_page", page_ms),
               **stats("chat", chat), **stats("chat_baseline", baseline)}

        if capacity:
            extra = [handed_over(http) for _ in range(capacity)]
            answered: list[float] = []

            def one(cid, tok, last):
                with httpx.Client(base_url=url, timeout=40) as c:
                    start = time.perf_counter()
                    c.get(f"/api/conversations/{cid}/messages?after={last}&wait=20",
                          headers={"Authorization": f"Bearer {tok}"})
                    answered.append(time.perf_counter() - start)

            threads = [threading.Thread(target=one, args=(c, t, last), daemon=True) for c, t, _, last in extra]
            for t in threads:
                t.start()
            time.sleep(3)
            during = chat_times(http, 50, errors)
            for t in threads:
                t.join(40)
            out.update(capacity_asked=capacity, capacity_held=sum(1 for s in answered if s >= 19),
                       capacity_at_once=sum(1 for s in answered if s < 5),
                       capacity_chat_p99_ms=round(percentile(during, 99), 1))
        stop.set()
    out["errors"] = errors[:20]
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widgets", type=int, default=50, help="widgets holding a request for news")
    parser.add_argument("--rounds", type=int, default=100, help="timed replies, user messages and questions")
    parser.add_argument("--capacity", type=int, default=0, help="extra held requests opened at once")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        instance = prepare_instance(Path(tmp) / "instance")
        from bot import Store
        from bot.accounts.agents import AgentAccounts

        store = Store(instance / "helpdesk.sqlite")
        AgentAccounts(store).add_agent("bench", "運営事務局 ベンチ", PASSWORD, NOW)
        store.close()
        proc, url, log = start_server(instance)
        try:
            result = measure(url, args.widgets, args.rounds, args.capacity, random.Random(42))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            log.close()
            os.unlink(log.name)
    if args.json:
        print(json.dumps(result))
        return result
    print(f"live benchmark: {args.widgets} widgets holding a request, {args.rounds} rounds, gunicorn 2×4, LIVE_WAITS 100")
    print(f"{'':<38}{'p50 ms':>10}{'p99 ms':>10}")
    for label, name in (("agent reply → widget", "agent_reply"), ("user message → ticket page", "ticket_page"),
                        (f"chat question, {args.widgets} widgets held", "chat"),
                        ("chat question, baseline (none held)", "chat_baseline")):
        print(f"{label:<38}{result[name + '_p50_ms']:>10}{result[name + '_p99_ms']:>10}")
    if args.capacity:
        print(f"capacity: {result['capacity_asked']} more asked at once: {result['capacity_held']} held, "
              f"{result['capacity_at_once']} answered at once; chat p99 meanwhile {result['capacity_chat_p99_ms']} ms")
    print(f"errors: {result['errors']}   targets: agent reply p99 < 1000 ms, ticket page p99 < 2000 ms")
    return result


if __name__ == "__main__":
    main()
