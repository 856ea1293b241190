"""`make run`'s console: with LOG_FORMAT = "text" the real server writes one short line per request,
its time in JST, and no waitress "Task queue depth" warnings when requests wait for a thread."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.conftest import ServerProcess, build_instance

LINE = re.compile(r"^(\d\d):(\d\d):(\d\d) (GET|POST) (\S+) (\d{3}) \d+ms$")


@pytest.mark.server
def test_text_console_one_line_per_request_in_jst(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPDESK_LOG_FORMAT", "text")
    instance = build_instance(tmp_path / "instance")
    server = ServerProcess(instance.path, workers=1, threads=1).start()
    try:
        # More requests at once than the one thread: each waits in waitress's queue for a moment.
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: httpx.get(server.url + "/", timeout=30).status_code, range(16)))
        assert statuses == [200] * 16
        r = httpx.post(server.url + "/api/conversations", json={}, timeout=30)
        assert r.status_code == 201
        jst_now = datetime.now(timezone(timedelta(hours=9)))
        lines = [line for line in server.output.splitlines() if LINE.match(line)]
        assert [LINE.match(line).group(4, 5, 6) for line in lines].count(("GET", "/", "200")) == 16
        assert LINE.match(lines[-1]).group(4, 5, 6) == ("POST", "/api/conversations", "201")
        hour, minute = map(int, LINE.match(lines[-1]).group(1, 2))
        # The last line was written within the last minute or two, in Japan's time, not UTC's.
        stamped = jst_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        assert timedelta(0) <= (jst_now - stamped) % timedelta(days=1) < timedelta(minutes=3)
        assert "Task queue depth" not in server.output
        assert '"event"' not in server.output  # no JSON line slipped through
    finally:
        server.stop()
