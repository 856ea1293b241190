"""Build the help desk's services from an instance folder and the settings, for every process alike.

`build_services(instance_path, settings)` gives the web app, the CLI, the Telegram process and the tests
the same searcher, store, member records, staff accounts, conversation core and operations desk,
without importing Flask. This is the one place that wires them: each part gets what it needs through
its constructor (the core its desk and look-ups), and nothing is finished later from outside.
`build_notices(instance_path, settings)` gives the commands that change records or articles their
explicit notification step (bot/messaging/notices.py).
Nothing here needs the search index to exist: staff sign-in, the session endpoint and article pages work
before `helpdesk index` has run (articles are then read from their Markdown files); only searching
answers IndexMissing until the index is built, and picks it up as soon as it is.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

from bot import JST, Asker, Core, IndexMissing, Store, system_clock
from bot.accounts.staff import Account, StaffAccounts
from bot.accounts.agents import AgentAccounts
from bot.desk.actions import Desk, DeskOutbox
from bot.desk.handoff import Handoff
from bot.desk.hours import BusinessHours
from bot.privacy.redaction import redact
from bot.desk.tickets import TicketStore
from bot.messaging.notices import Notices
from helpdesk.instance import Instance
from helpdesk.settings import load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The knowledge base's own articles: what `helpdesk index` indexes, and what article pages fall back to.
ARTICLE_SOURCES = (PROJECT_ROOT / "kb" / "articles", PROJECT_ROOT / "release_notes")


class SharedSearcher:
    """One Searcher for all threads of a process, used by one thread at a time, opened on first use.

    A Searcher holds an SQLite connection and a Sudachi tokenizer, neither of which may be used by two
    threads at once (the ~75 MB dictionary behind the tokenizer is shared per process by kb.analysis).
    One per thread would gain nothing: ranking is Python under the GIL, so threads of one process
    cannot search in parallel anyway (processes can: that is what gunicorn's workers are for). It is
    opened on first use, never in the process that forks the server's workers, since an SQLite
    connection must not cross a fork. Without an index, searching raises IndexMissing while articles
    are still read, from their Markdown files.
    """

    def __init__(self, index_path: Path, sources=ARTICLE_SOURCES, timer=None):
        self.index_path = Path(index_path)
        # A context-manager factory timing each search (the web app passes its Prometheus histogram).
        self._timer = timer or contextlib.nullcontext
        self.sources = tuple(Path(s) for s in sources)
        self._searcher = None
        self._lock = threading.Lock()

    def _open(self):
        """The Searcher, or None while there is no index (call with the lock held)."""
        if self._searcher is None and self.index_path.exists():
            from kb.search import Searcher

            self._searcher = Searcher(self.index_path)
        return self._searcher

    def _required(self):
        searcher = self._open()
        if searcher is None:
            raise IndexMissing(self.index_path)
        return searcher

    def open(self) -> None:
        """Open the index now (a serving process warms up before its first question)."""
        with self._lock:
            self._required()

    def search(self, query: str, k: int = 5):
        with self._lock, self._timer():
            return self._required().search(query, k)

    def suggest(self, text: str, k: int = 3):
        with self._lock:
            return self._required().suggest(text, k)

    def article(self, slug: str):
        with self._lock:
            searcher = self._open()
            if searcher is not None:
                return searcher.article(slug)
        return next((a for a in self._source_articles(slug) if a.slug == slug), None)

    def articles(self):
        with self._lock:
            searcher = self._open()
            if searcher is not None:
                return searcher.articles()
        found = list(self._source_articles())
        return sorted(found, key=lambda a: (a.updated or "", a.slug), reverse=True)

    def _source_articles(self, slug: str | None = None):
        """Articles straight from the Markdown files (no index yet); broken files are left out."""
        from kb.loader import BrokenArticle, parse_article

        for folder in self.sources:
            paths = [folder / f"{slug}.md"] if slug else sorted(folder.glob("*.md"))
            for path in paths:
                if path.is_file():
                    try:
                        yield parse_article(path, path.read_bytes())
                    except BrokenArticle:
                        continue

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
            self._searcher = None


def fixed_clock(iso: str):
    now = datetime.fromisoformat(iso)
    return lambda: now


def clock_of(settings: Mapping):
    """The settings' clock: NOW fixed (demos, tests), else the system's."""
    return fixed_clock(settings["NOW"]) if settings.get("NOW") else system_clock


def asker_for(account: Account | None) -> Asker:
    """The chat's asker for a signed-in staff account (anonymous without one)."""
    if account is None:
        return Asker()
    return Asker(role="staff", display_name=account.display_name, association_code=account.association_code,
                 association_level=account.level, account=account.login_id)


@dataclass
class DeskServices:
    """The operations desk: what the console, the handoff API and `helpdesk agent` use."""

    agents: AgentAccounts
    tickets: TicketStore
    handoff: Handoff
    desk: Desk
    hours: BusinessHours


class Services:
    """What every channel uses: the Store, the searcher, the member records, staff accounts, the Core and
    the operations desk.

    The records open their read-only connections lazily; a missing records database is not an error
    here: lookups answer that the member data has not been loaded yet, and start working once
    `helpdesk demo-data` or `sync-members` has created it. `settings` is read when the core is first
    built (MAX_MESSAGE_CHARS, LINK_CODE_MINUTES, NOW), so the web app can pass its live config.
    """

    def __init__(self, instance: Instance, settings: Mapping, search_timer=None):
        from records.lookup import Records

        self.instance = instance
        self.config = settings
        self.store = Store(instance.helpdesk_db)
        self.clock = clock_of(settings)
        self.records = Records(instance.records_db, instance.audit_db,
                               today=lambda: self.clock().astimezone(JST).date())
        self._accounts = StaffAccounts(self.store, records_db=instance.records_db)
        self._searcher = SharedSearcher(instance.kb_index, timer=search_timer)
        self._core: Core | None = None
        self._desk: DeskServices | None = None
        self._lock = threading.Lock()

    def accounts(self) -> StaffAccounts:
        return self._accounts

    def searcher(self) -> SharedSearcher:
        return self._searcher

    def core(self) -> Core:
        """The conversation core, built on first use. The index is opened with it when it exists, so a
        serving process that warms up with core() answers its first question at full speed."""
        if self._core is None:
            self._build()
            self.warm()
        return self._core

    def desk(self) -> DeskServices:
        """The operations desk (tickets, the queue's accounts, the handoff, the console's actions), built
        with the core."""
        if self._desk is None:
            self._build()
        return self._desk

    def _build(self) -> None:
        """Build the core and the desk together: the core hands conversations over through the desk's
        Handoff, and the desk looks records up and names askers through the core."""
        with self._lock:
            if self._core is not None:
                return
            tickets = TicketStore(self.store)
            hours = BusinessHours.from_settings(self.config)  # one desk line for the core and the handoff
            handoff = Handoff(self.store, tickets, hours, self.clock, redact)
            core = Core(self._searcher, self.store, self.clock, max_chars=int(self.config["MAX_MESSAGE_CHARS"]),
                        records=self.records, link_code_minutes=int(self.config["LINK_CODE_MINUTES"]),
                        hours=hours, desk=handoff)

            def asker_of(conversation) -> Asker:
                """The ticket's asker as they are now: their staff account, or their linked messaging account."""
                owner = conversation.owner or ""
                if ":" in owner:
                    channel, _, user = owner.partition(":")
                    return core.linked_asker(channel, user)
                return asker_for(self._accounts.get(owner) if owner else None)

            desk = Desk(self.store, tickets, handoff, outbox=DeskOutbox(self.store), asker_of=asker_of,
                        lookups=core.lookups)
            self._desk = DeskServices(AgentAccounts(self.store), tickets, handoff, desk, handoff.hours)
            self._core = core

    def warm(self) -> None:
        """Open the index now if there is one (a missing index is not an error until someone searches)."""
        try:
            self._searcher.open()
        except IndexMissing:
            pass

    def close(self) -> None:
        with self._lock:
            self._searcher.close()
            self._core = self._desk = None
        self.records.close()
        self.store.close()


def build_notices(instance_path: Path | str, settings: Mapping | None = None) -> Notices:
    """The notices to subscribed doctors, the explicit step of `helpdesk sync-*` and `helpdesk index`
    (bot/messaging/notices.py). Built without the rest of the services: an import opens no help desk
    database when none exists (nobody can have subscribed yet)."""
    instance = Instance.at(instance_path)
    settings = load_settings(instance.path) if settings is None else settings
    return Notices(instance.helpdesk_db, instance.records_db, instance.kb_index, ARTICLE_SOURCES[1],
                   settings.get("PUBLIC_URL") or None, clock_of(settings))


def build_services(instance_path: Path | str, settings: Mapping | None = None, *, search_timer=None) -> Services:
    """The services of the instance at `instance_path`; `settings` defaults to the instance's own
    (helpdesk.settings.load_settings). `search_timer` times each search (a metrics histogram)."""
    instance = Instance.at(instance_path)
    return Services(instance, load_settings(instance.path) if settings is None else settings, search_timer)
