"""Slow clients cannot stop the server: `helpdesk serve` (a real subprocess) hands a request to a thread
only once it has been read whole, so fifty connections that announce a body and trickle it in hold no
thread, and /api/health keeps answering. Also the demo page over the real server, with a forged Host."""
from __future__ import annotations

import os
import resource
import socket
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import httpx
import pytest

SLOW_CLIENTS = 50
BODY = b"{}" + b" " * 998  # 1,000 bytes of valid JSON


def open_slow_client(url: str) -> socket.socket:
    """A connection that announces a 1,000-byte body and sends one byte of it."""
    parts = urlsplit(url)
    conn = socket.create_connection((parts.hostname, parts.port), timeout=10)
    conn.sendall(b"POST /api/conversations HTTP/1.1\r\nHost: " + parts.netloc.encode() +
                 b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + BODY[:1])
    return conn


@pytest.mark.parametrize("server", ["gunicorn", "waitress"])
def test_fifty_slow_clients_do_not_stop_the_server(server_process, server):
    running = server_process(server=server).start()
    with ExitStack() as stack:
        slow = [stack.enter_context(open_slow_client(running.url)) for _ in range(SLOW_CLIENTS)]
        time.sleep(0.5)  # every one of them has been accepted and is waiting for its body
        with httpx.Client(base_url=running.url, timeout=5) as http:
            started = time.monotonic()
            answers = [http.get("/api/health").status_code for _ in range(20)]
            assert answers == [200] * 20
            created = http.post("/api/conversations")
            assert created.status_code == 201
            assert time.monotonic() - started < 10
        # A slow client that finally sends the rest is answered normally.
        slow[0].sendall(BODY[1:])
        head = slow[0].recv(4096).split(b"\r\n", 1)[0]
        assert head.split(b" ")[:2] == [b"HTTP/1.1", b"201"]


def test_the_demo_page_over_the_real_server_ignores_a_forged_host(server_process):
    running = server_process().start()
    port = urlsplit(running.url).port
    page = httpx.get(running.url + "/", headers={"Host": "evil.example"}, timeout=10)
    assert page.status_code == 200 and "evil.example" not in page.text
    assert f'<script src="http://127.0.0.1:{port}/widget.js" defer></script>' in page.text
    assert "Content-Security-Policy" in page.headers and "no-cache" in page.headers["Cache-Control"]


# -- behind the proxy: each client is limited by the address the proxy forwards (issue 19, item 2) --------

def conversations_from(url: str, addresses: list[str]) -> list[int]:
    """One new conversation per forwarded address, as nginx would send them (X-Forwarded-For set)."""
    with httpx.Client(base_url=url, timeout=10) as http:
        return [http.post("/api/conversations", headers={"X-Forwarded-For": address}).status_code
                for address in addresses]


@pytest.mark.parametrize("server", ["gunicorn", "waitress"])
def test_behind_the_proxy_each_forwarded_address_has_its_own_limit(live_server_factory, server):
    url = live_server_factory({"TRUSTED_PROXIES": 1, "CONVERSATION_RATE_LIMIT": "1 per 5 minutes"}, server=server)
    assert conversations_from(url, [f"203.0.113.{n}" for n in range(1, 11)]) == [201] * 10
    assert conversations_from(url, ["203.0.113.1", "203.0.113.11"]) == [429, 201]


def test_without_a_trusted_proxy_a_forwarded_address_is_ignored_by_the_served_stack(live_server_factory):
    url = live_server_factory({"CONVERSATION_RATE_LIMIT": "1 per 5 minutes"})
    assert conversations_from(url, ["203.0.113.1", "203.0.113.2", "198.51.100.7"]) == [201, 429, 429]


# -- more than a thousand connections (issue 19, item 3) ------------------------------------------------

@pytest.fixture
def many_files():
    """Room for a few thousand sockets in this process and the servers it starts (they inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if wanted < 2048:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low for this test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connect_from(url: str, source: str) -> socket.socket:
    """A connection to the server from `source` (any 127.x.y.z is this machine's loopback on Linux)."""
    parts = urlsplit(url)
    conn = socket.socket()
    conn.bind((source, 0))
    conn.connect((parts.hostname, parts.port))
    return conn


def spilled_body(url: str, source: str) -> socket.socket:
    """A connection part-way through a 1,000,000-byte body, past the 512 KB that waitress keeps in memory, so
    that the server holds one more file (a temporary file) for it."""
    conn = connect_from(url, source)
    conn.sendall(b"POST /api/conversations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000000\r\n\r\n" + b" " * 600_000)
    return conn


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_waitress_outlives_more_than_a_thousand_connections(server_process, many_files):
    """With select() the server died once a file number passed 1023 ("filedescriptor out of range in
    select()"): a thousand connections, thirty of them with a body spilled to a temporary file, take it past that."""
    running = server_process(server="waitress").start()
    with ExitStack() as stack:
        for n in range(30):
            stack.enter_context(spilled_body(running.url, f"127.0.2.{n + 1}"))
        for n in range(1000):
            stack.enter_context(connect_from(running.url, f"127.0.1.{n // 20 + 1}"))
        deadline = time.monotonic() + 20
        while running.proc.poll() is None and open_files(running.proc.pid) <= 1024:
            assert time.monotonic() < deadline, f"the server holds only {open_files(running.proc.pid)} files"
            time.sleep(0.2)
        time.sleep(1)  # a few turns of the event loop with every file number past 1023 in it
        assert running.proc.poll() is None, running.output
    deadline = time.monotonic() + 15
    while True:  # the crowd has gone: the server answers as before
        try:
            assert httpx.get(running.url + "/api/health", timeout=2).status_code == 200
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline and running.proc.poll() is None, running.output
            time.sleep(0.2)
    assert "out of range" not in running.output


# -- one client's crowd of slow sockets (issue 19, item 6) -----------------------------------------------

def still_open(conn: socket.socket) -> bool:
    """Whether the server has not closed this connection (nothing to read yet, no end of stream)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except ConnectionError:
        return False


def test_slow_sockets_from_one_address_do_not_stop_another_client(server_process, many_files):
    """2,100 connections from one address, each part-way through a request, held more than both
    workers' 1,000 sockets; now each worker keeps 100 of them and closes the rest, and a client from
    another address is served at once."""
    from handlers.server.limits import CONNECTIONS_PER_ADDRESS

    running = server_process().start()  # the default: gunicorn, 2 workers
    with ExitStack() as stack:
        crowd = []
        for _ in range(2100):
            conn = stack.enter_context(connect_from(running.url, "127.0.3.1"))
            conn.sendall(b"POST /api/conversations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            crowd.append(conn)
        other = httpx.Client(base_url=running.url, timeout=5, transport=httpx.HTTPTransport(local_address="127.0.4.1"))
        with other:
            started = time.monotonic()
            assert [other.get("/api/health").status_code for _ in range(5)] == [200] * 5
            assert other.post("/api/conversations").status_code == 201
            assert time.monotonic() - started < 5
        time.sleep(0.5)
        assert sum(still_open(conn) for conn in crowd) <= 2 * CONNECTIONS_PER_ADDRESS


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


@pytest.fixture
def limited_waitress():
    """A waitress server on a free port, limited as `helpdesk serve`'s are but with a 1-second arrival
    limit, its event loop in a thread; yields its (host, port)."""
    import threading

    from waitress import wasyncore
    from waitress.server import create_server

    from handlers.server.command import WAITRESS_OPTIONS
    from handlers.server.limits import limit_channels

    channels: dict = {}
    server = create_server(hello, map=channels, host="127.0.0.1", port=0, threads=1, **WAITRESS_OPTIONS)
    limit_channels(channels, per_address=None, arrival_seconds=1)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=channels, use_poll=True, count=1)
        server.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield server.effective_host, server.effective_port
    stop.set()
    thread.join(5)


def trickle(address, request: bytes, pause: float, piece: int = 1) -> tuple[bytes, float]:
    """Send `request` `piece` bytes at a time, `pause` s apart; return what came back and when it ended."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=5) as conn:
        try:
            for at in range(0, len(request), piece):
                conn.sendall(request[at:at + piece])
                time.sleep(pause)
            return conn.recv(4096), time.monotonic() - started
        except (BrokenPipeError, ConnectionResetError):
            return b"", time.monotonic() - started


def test_a_request_must_arrive_whole_within_the_arrival_limit(limited_waitress):
    """Each byte restarts waitress's idle timeout, so a request that trickled in could hold its socket
    for ever; now the first byte past the arrival limit closes it."""
    request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + b"X-Pad: " + b"a" * 40 + b"\r\n\r\n"
    answer, took = trickle(limited_waitress, request, 0.05)  # about 4.5 s in all
    assert answer == b"" and took < 2.5
    # The same request in five pieces, well within the limit however loaded the machine.
    answer, _took = trickle(limited_waitress, request, 0.01, piece=20)
    assert answer.startswith(b"HTTP/1.1 200 OK")
