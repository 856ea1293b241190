"""Shared helpers for the desk tests: agents with a known password, signing in to the console over a
Flask test client or httpx, the CSRF token of a page, and a conversation that asked for a person."""
from __future__ import annotations

import re

AGENT_PASSWORD = "desk-password-2026"
AGENTS = {"yamada": "運営事務局 山田", "sato": "運営事務局 佐藤"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_agents(instance) -> None:
    from bot import Store
    from bot.accounts.agents import AgentAccounts

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


def telegram_ticket(instance, chat_id: int, text: str = "会員証の再発行について") -> int:
    """A ticket handed over from the Telegram chat `chat_id` (negative: a group), written straight into the
    instance's database as the bot process would; returns its number."""
    from datetime import datetime

    from bot import JST, Asker, Store
    from bot.desk.handoff import Handoff
    from bot.desk.hours import BusinessHours
    from bot.privacy.redaction import redact
    from bot.desk.tickets import TicketStore

    store = Store(instance.helpdesk_db)
    try:
        asker = Asker(account=f"telegram:{chat_id}")
        conversation = store.open_for_chat("telegram", str(chat_id), asker.role, "2026-11-25T10:00:00+09:00",
                                           asker.account)
        handoff = Handoff(store, TicketStore(store), BusinessHours.from_settings({}),
                          lambda: datetime(2026, 11, 25, 10, 0, tzinfo=JST), redact)
        return handoff.create(conversation.id, asker, "telegram", reason="words", user_text=text).ticket.number
    finally:
        store.close()
