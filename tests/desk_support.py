"""Shared helpers for the desk tests: agents with a known password, signing in to the console over a
Flask test client or httpx, the CSRF token of a page, and a conversation that asked for a person."""
from __future__ import annotations

import re

AGENT_PASSWORD = "desk-password-2026"
AGENTS = {"yamada": "運営事務局 山田", "sato": "運営事務局 佐藤"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_agents(instance) -> None:
    from bot import Store
    from bot.agents import AgentAccounts

    store = Store(instance.helpdesk_db)
    try:
        agents = AgentAccounts(store)
        for login_id, name in AGENTS.items():
            agents.add_agent(login_id, name, AGENT_PASSWORD, "2026-11-25T09:00:00+09:00")
    finally:
        store.close()


def csrf_of(html: str) -> str:
    return CSRF.search(html).group(1)


def sign_in(client, login_id: str = "yamada", password: str = AGENT_PASSWORD):
    """Sign an agent in through the form; returns the response of the POST (303 on success)."""
    token = csrf_of(client.get("/desk/login").text)
    return client.post("/desk/login", data={"login_id": login_id, "password": password, "csrf_token": token})


def body(response):
    """The JSON of a Flask test response or an httpx response."""
    return response.json() if callable(response.json) else response.json


def conversation(client, *texts):
    """Open a web conversation and send `texts`; returns (id, headers with its bearer token)."""
    created = body(client.post("/api/conversations", json={}))
    headers = {"Authorization": f"Bearer {created['token']}"}
    for text in texts:
        response = client.post(f"/api/conversations/{created['id']}/messages", json={"text": text}, headers=headers)
        assert response.status_code == 201, response.text
    return created["id"], headers
