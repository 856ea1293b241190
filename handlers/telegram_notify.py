"""Notifications to subscribed doctors, written to the outbox by the processes that change things.

Each `helpdesk sync-*` command calls its notification step (`SubscriberNotices`, given to it by
handlers/cli.py): around the import, the state of every subscribed, linked doctor (membership
status, each application's stage, state and return reason) is read before and after, and each change
becomes one outbox row for that doctor's chat. `helpdesk index` is wrapped (`watch_index`, applied where
the CLI registers it): after indexing, a release note not seen before becomes
one row per subscribed chat. The bot process sends them (handlers/telegram_outbox.py). Keys make each
notification once only, also when a job is run twice. The first index run only records the release
notes that exist, so subscribers are not flooded with old news.

Member data is read here directly from the read-only records copy, with plain SQL: this is the system
comparing two snapshots for the doctor's own chat, not a person's lookup, so it is not in the access log.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import click

from bot import Store
from bot.outbox import Outbox
from handlers.telegram_render import article_url, esc, render_text
from records.values import KIND_JA, where_label  # the lookups' own words for where an application stands
from records.vocab import STATUS_JA
from storage.sqlite import connect

log = logging.getLogger("helpdesk.telegram")
CHANNEL = "telegram"

STAGE_CHANGED = "{kind}（申請番号 {number}）の状況が変わりました：{status}"
RETURN_REASON = "差戻しの理由：{reason}"
STATUS_CHANGED = "会員状態が「{before}」から「{after}」に変わりました。"
NEW_RELEASE_NOTE = "新しいリリースノートが公開されました：{title}"
FOOTER = "（MAMISヘルプデスクからのお知らせ。停止するには /notify off）"


@dataclass(frozen=True)
class Watched:
    status: str | None
    applications: tuple[tuple[str, str, str, str, str | None], ...]  # (number, kind, stage, state, reason)


def _open_store(instance) -> Store | None:
    """The help desk store, or None when there is none yet (nobody can have subscribed) or no instance
    at all (the command itself then says so)."""
    if instance is None or not Path(instance.helpdesk_db).exists():
        return None
    return Store(instance.helpdesk_db)


MEMBERS_SQL = """
    SELECT member_number, status FROM members WHERE member_number IN (SELECT value FROM json_each(:numbers))
"""
APPLICATIONS_SQL = """
    SELECT a.member_number, a.application_number, a.kind, a.stage, a.state,
           (SELECT e.reason FROM application_events e WHERE e.application_id = a.id AND e.action = 'returned'
            ORDER BY e.seq DESC LIMIT 1) AS reason
    FROM applications a WHERE a.member_number IN (SELECT value FROM json_each(:numbers))
    ORDER BY a.application_number
"""


def snapshot(records_db: Path, numbers: list[str]) -> dict[str, Watched]:
    """What subscribed doctors would be told about, for the member numbers given."""
    if not numbers or not Path(records_db).exists():
        return {}
    conn = connect(records_db, readonly=True)
    try:
        params = {"numbers": json.dumps(numbers)}
        status = dict(conn.execute(MEMBERS_SQL, params).fetchall())
        apps: dict[str, list] = {}
        try:
            for member, number, kind, stage, state, reason in conn.execute(APPLICATIONS_SQL, params):
                apps.setdefault(member, []).append((number, kind, stage, state, reason if state == "returned" else None))
        except Exception as e:  # a records copy without applications (an old schema): status only
            log.warning("applications not readable: %s", type(e).__name__)
    finally:
        conn.close()
    return {n: Watched(status.get(n), tuple(apps.get(n, ()))) for n in numbers}


def changes(before: Watched | None, after: Watched) -> list[tuple[str, str]]:
    """(key, text) for each change between two snapshots of one doctor."""
    out = []
    if before is not None and before.status and after.status and before.status != after.status:
        out.append((f"status:{after.status}", STATUS_CHANGED.format(before=STATUS_JA.get(before.status, before.status),
                                                                    after=STATUS_JA.get(after.status, after.status))))
    old = {a[0]: a for a in (before.applications if before else ())}
    for number, kind, stage, state, reason in after.applications:
        if old.get(number) == (number, kind, stage, state, reason) or (before is None):
            continue
        text = STAGE_CHANGED.format(kind=KIND_JA.get(kind, kind), number=number, status=where_label(stage, state))
        if reason:
            text += "\n" + RETURN_REASON.format(reason=reason)
        out.append((f"application:{number}:{stage}:{state}", text))
    return out


class SubscriberNotices:
    """The notification step of an import (`helpdesk sync-*`), called explicitly by the command.

    `open(instance)` reads, before the import, what each subscribed, linked doctor would be told
    about; `queue()` reads it again after the import and queues one outbox row per change. The
    same file imported twice changes nothing the second time, so it queues nothing.
    """

    def __init__(self, instance, store: Store | None):
        self.instance, self.store = instance, store
        self.outbox = Outbox(store, CHANNEL) if store else None
        self.watched = ({s.member_number: s for s in self.outbox.subscribers() if s.member_number}
                        if self.outbox else {})
        self.before = snapshot(instance.records_db, list(self.watched))

    @classmethod
    def open(cls, instance) -> "SubscriberNotices":
        return cls(instance, _open_store(instance))

    def queue(self) -> int:
        if not self.watched:
            return 0
        after = snapshot(self.instance.records_db, list(self.watched))
        return queue_changes(self.outbox, self.watched, self.before, after)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def queue_changes(outbox: Outbox, watched: dict, before: dict, after: dict) -> int:
    from bot import system_clock

    now = system_clock().isoformat(timespec="seconds")
    queued = 0
    for number, state in after.items():
        for key, text in changes(before.get(number), state):
            subscriber = watched[number]
            payload = render_text(text + "\n\n" + FOOTER)[0]
            queued += outbox.notify(subscriber.chat_id, f"{key}:{subscriber.chat_id}:{now}", payload, now)
    return queued


def watch_index(command: click.Command, public_url=lambda instance: None) -> click.Command:
    """Wrap `index` so that a release note indexed for the first time is announced to subscribers."""
    inner = command.callback

    @functools.wraps(inner)
    def callback(*args, **kwargs):
        instance = click.get_current_context().obj
        try:
            return inner(*args, **kwargs)
        finally:
            queued = announce_release_notes(instance, public_url(instance))
            if queued:
                click.echo(f"Telegram の通知 {queued} 件を送信待ちにしました。", err=True)

    command.callback = callback
    return command


RELEASE_NOTES = Path(__file__).resolve().parent.parent / "release_notes"


def release_notes(kb_index: Path, folder: Path | None = None) -> list[tuple[str, str]]:
    """(slug, title) of every release note (a file of release_notes/, slug = file name) in the index."""
    if not Path(kb_index).exists():
        return []
    from kb.search import Searcher

    searcher = Searcher(kb_index)
    try:
        found = (searcher.article(path.stem) for path in sorted(Path(folder or RELEASE_NOTES).glob("*.md")))
        return [(a.slug, a.title) for a in found if a is not None]
    finally:
        searcher.close()


def announce_release_notes(instance, public_url: str | None) -> int:
    store = _open_store(instance) or Store(instance.helpdesk_db)
    try:
        outbox = Outbox(store, CHANNEL)
        seen = set(json.loads(outbox.meta("release_notes_seen") or "null") or ())
        notes = release_notes(instance.kb_index)
        first_run = outbox.meta("release_notes_seen") is None
        new = [(slug, title) for slug, title in notes if slug not in seen]
        outbox.set_meta("release_notes_seen", json.dumps(sorted(seen | {s for s, _ in notes})))
        if first_run or not new:
            return 0
        from bot import system_clock

        now = system_clock().isoformat(timespec="seconds")
        queued = 0
        for subscriber in outbox.subscribers():
            for slug, title in new:
                url = article_url(public_url, slug)
                text = esc(NEW_RELEASE_NOTE.format(title=title))
                if url:
                    text += f'\n<a href="{esc(url)}">{esc(url)}</a>'
                payload = {"text": text + "\n\n" + esc(FOOTER)}
                queued += outbox.notify(subscriber.chat_id, f"release:{slug}:{subscriber.chat_id}", payload, now)
        return queued
    finally:
        store.close()
