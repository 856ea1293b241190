"""The bot's aiohttp connection to the Bot API: the library's errors for timeouts and network failures,
and the environment's proxy. (Every other test of the bot already talks to the fake through it.)"""
from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from telegram.error import NetworkError, TimedOut

from handlers.telegram.bot_api import AiohttpRequest


async def post(request: AiohttpRequest, url: str, **kwargs):
    await request.initialize()
    try:
        return await request.do_request(url, "POST", **kwargs)
    finally:
        await request.shutdown()


def test_a_server_that_never_answers_is_a_timeout():
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/bot1:x/getMe"
    try:
        with pytest.raises(TimedOut):
            asyncio.run(post(AiohttpRequest(read_timeout=0.3), url))
    finally:
        listener.close()


def test_nobody_listening_is_a_network_error():
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkError, match="aiohttp"):
        asyncio.run(post(AiohttpRequest(), f"http://127.0.0.1:{port}/bot1:x/getMe"))


def test_not_initialized_is_said_plainly():
    with pytest.raises(RuntimeError, match="not initialized"):
        asyncio.run(AiohttpRequest().do_request("http://127.0.0.1:1/", "POST"))


def test_the_environments_proxy_is_used_except_for_no_proxy(monkeypatch):
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example-med.or.jp:8080")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    request = AiohttpRequest()
    assert request._proxy("https://api.telegram.org/bot1:x/sendMessage") == "http://proxy.example-med.or.jp:8080"
    assert request._proxy("http://127.0.0.1:8081/bot1:x/sendMessage") is None
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("NO_PROXY")
    assert AiohttpRequest()._proxy("https://api.telegram.org/bot1:x/getMe") is None
