"""Load benchmark of the chat API: `helpdesk serve` under a bounded concurrent load of real questions.

    python bench/chat_bench.py [--clients 8] [--seconds 30] [--server gunicorn|waitress] [--json]

Builds a temporary instance (index from kb/articles and release_notes, rate limits set high so the
limiter is exercised but never throttles), starts the server as a subprocess on a free port, and runs
`--clients` threads, each with its own keep-alive connection and its own conversations, posting
Japanese questions through POST /api/conversations/<id>/messages for `--seconds`. Then the same clients
hit GET /api/health for a shorter while: the server's ceiling on this machine, printed alongside.

JSON keys: throughput_msgs_s, p50_ms, p99_ms, errors, rss_start_mb, rss_end_mb, trivial_msgs_s.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402

# What secretariat staff and doctors actually ask, with follow-ups, small talk and questions the
# knowledge base cannot answer, so every branch of the core is in the mix.
QUESTIONS = [
    "日医ニュースの送付先を自宅に変更したい",
    "日本医師会雑誌の特別号だけ送付を止めたい",
    "送付区分設定とは何ですか",
    "医療機関マスタはいつ更新されますか",
    "新規開業したクリニックがマスタに出てこない",
    "それはいつですか",
    "入会届で医療機関名を手入力したらどうなりますか",
    "会員情報をCSVで取得したい",
    "API連携の申し込みはどこにすればいいですか",
    "電話番号は？",
    "かかりつけ医機能報告の承認操作説明会はいつですか",
    "場所は？",
    "会員情報担当理事連絡協議会の日程を教えてください",
    "MAMISに登録されている会員数は何人ですか",
    "医師会情報の更新は誰がするのですか",
    "利用状況調査のアンケートは郡市区医師会にも配る必要がありますか",
    "MAMISの操作について問い合わせたい",
    "リリースノートはどこで見られますか",
    "差戻しされた報告はどうなりますか",
    "ますたの反映が遅い",
    "こんにちは",
    "ありがとうございました",
    "使い方",
    "パスワードを忘れました",
    "担当者と話したい",
]


def rss_mb(pid: int) -> float:
    """Resident memory of the server and all its worker processes, in MiB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return round(total / 1024, 1)


def serve_command(instance: Path, port: int, server: str, workers: int, threads: int) -> list[str]:
    """`helpdesk serve` when the installed CLI has it, else the same command via handlers.server.main."""
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--server", server,
            "--workers", str(workers), "--threads", str(threads)]
    helpdesk = shutil.which("helpdesk", path=str(Path(sys.executable).parent))
    try:
        from handlers.cli.main import cli

        registered = "serve" in cli.commands
    except ImportError:
        registered = False
    if helpdesk and registered:
        return [helpdesk, "--instance", str(instance), *args]
    return [sys.executable, "-m", "handlers.server.main", "--instance", str(instance), *args]


def start_server(instance: Path, server: str, workers: int, threads: int):
    """`helpdesk serve` on a port it picks (port 0) and prints; returns (process, port, log)."""
    from handlers.server.command import started_url

    log = tempfile.NamedTemporaryFile("w+", prefix="chat-bench-", suffix=".log", delete=False)
    proc = subprocess.Popen(serve_command(instance, 0, server, workers, threads), cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{Path(log.name).read_text()}")
        url = started_url(Path(log.name).read_text())
        if url is None:
            time.sleep(0.1)
            continue
        port = int(url.rsplit(":", 1)[1])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port, log
        except OSError:
            pass
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"server did not start:\n{Path(log.name).read_text()}")


class Client(threading.Thread):
    """One user: its own keep-alive connection and conversation, asking questions back to back."""

    def __init__(self, port: int, n: int, stop_at: float, health_only: bool = False):
        super().__init__(daemon=True)
        self.port, self.n, self.stop_at, self.health_only = port, n, stop_at, health_only
        self.latencies: list[float] = []
        self.errors = 0
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            return None, None
        return response.status, payload

    def new_conversation(self):
        # A new conversation comes on a new connection, as from a new browser tab; otherwise whichever
        # worker accepted the first burst of connections would keep every client for the whole run.
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        status, payload = self.call("POST", "/api/conversations", {})
        if status != 201:
            self.errors += 1
            return None
        created = json.loads(payload)
        return created["id"], created["token"]

    def run(self):
        if self.health_only:
            while time.monotonic() < self.stop_at:
                t = time.perf_counter()
                status, _ = self.call("GET", "/api/health")
                self.latencies.append(time.perf_counter() - t)
                self.errors += status != 200
            return
        conversation, i = None, self.n
        while time.monotonic() < self.stop_at:
            if conversation is None or i % 40 == 0:  # a fresh conversation now and then, as people do
                conversation = self.new_conversation()
                if conversation is None:
                    continue
            cid, token = conversation
            text = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            t = time.perf_counter()
            status, _ = self.call("POST", f"/api/conversations/{cid}/messages",
                                  {"text": text, "idempotency_key": f"{self.n}-{i}"}, token)
            self.latencies.append(time.perf_counter() - t)
            self.errors += status != 201


def run_phase(port: int, clients: int, seconds: float, health_only: bool = False):
    stop_at = time.monotonic() + seconds
    threads = [Client(port, n, stop_at, health_only) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    latencies = sorted(x for t in threads for x in t.latencies)
    return latencies, sum(t.errors for t in threads), elapsed


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (threads)")
    parser.add_argument("--seconds", type=float, default=30, help="duration of the message load")
    parser.add_argument("--server", choices=("gunicorn", "waitress"), default="gunicorn")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (waitress: threads)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before measuring (caches fill)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)

    from kb.indexer import build_index

    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmp:
        instance = Path(tmp)
        build_index([ROOT / "kb" / "articles", ROOT / "release_notes"], instance / "kb.sqlite")
        high = "1000000 per minute"
        (instance / "config.json").write_text(json.dumps({
            "MESSAGE_RATE_LIMIT": high, "CONVERSATION_RATE_LIMIT": high,
            "SUGGEST_RATE_LIMIT": high, "FEEDBACK_RATE_LIMIT": high,
        }))
        proc, port, log = start_server(instance, args.server, args.workers, args.threads)
        try:
            # Warm-up: every worker thread opens its database connection and SQLite's and Sudachi's
            # caches fill; memory is measured from there, so growth afterwards would be a leak.
            run_phase(port, args.clients, args.warmup)
            rss_start = rss_mb(proc.pid)
            latencies, errors, elapsed = run_phase(port, args.clients, args.seconds)
            rss_end = rss_mb(proc.pid)
            trivial, trivial_errors, trivial_elapsed = run_phase(port, args.clients, min(10.0, args.seconds), True)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
            log.close()
            os.unlink(log.name)

    result = {
        "throughput_msgs_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2) if latencies else 0.0,
        "p99_ms": round(percentile(latencies, 99) * 1000, 2) if latencies else 0.0,
        "errors": errors + trivial_errors,
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "trivial_msgs_s": round(len(trivial) / trivial_elapsed, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"server: {args.server} (workers {args.workers}, threads {args.threads}), clients {args.clients}, "
              f"{args.seconds:g} s, {os.cpu_count()} CPUs")
        print(f"messages   {result['throughput_msgs_s']:>8} msgs/s   p50 {result['p50_ms']} ms   p99 {result['p99_ms']} ms"
              f"   errors {result['errors']}")
        print(f"ceiling    {result['trivial_msgs_s']:>8} req/s    (GET /api/health, same server, same clients)")
        print(f"memory     {result['rss_start_mb']} MiB → {result['rss_end_mb']} MiB (server and workers)")
    return result


if __name__ == "__main__":
    main()
