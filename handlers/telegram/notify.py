"""Notifications to subscribed doctors, written to the outbox by the processes that change things.

Each `helpdesk sync-*` command calls its notification step itself (`SubscriberNotices`, in
handlers/cli/records.py): around the import, the state of every subscribed, linked doctor (membership
status, each application's stage, state and return reason) is read before and after, and each change
becomes one outbox row for that doctor's chat. `helpdesk index` calls its step after indexing
(`announce_release_notes`, in handlers/cli/main.py): a release note not seen before becomes one row per
subscribed chat. The bot process sends them (handlers/telegram/outbox.py). Keys make each
notification once only, also when a job is run twice. The first index run only records the release
notes that exist, so subscribers are not flooded with old news.

What a doctor is told about is read from the records by `records.watch.watched_members` (the system
comparing two snapshots for the doctor's own chat, not a person's lookup, so not in the access log).
"""
from __future__ import annotations

import json
from pathlib import Path

from bot import Store
from bot.channels import TELEGRAM
from bot.messaging.outbox import Outbox
from handlers.telegram.render import article_url, esc, render_text
from records.watch import WatchedMember, watched_members

CHANNEL = TELEGRAM

STAGE_CHANGED = "{kind}（申請番号 {number}）の状況が変わりました：{status}"
RETURN_REASON = "差戻しの理由：{reason}"
STATUS_CHANGED = "会員状態が「{before}」から「{after}」に変わりました。"
NEW_RELEASE_NOTE = "新しいリリースノートが公開されました：{title}"
FOOTER = "（MAMISヘルプデスクからのお知らせ。停止するには /notify off）"


def _open_store(instance) -> Store | None:
    """The help desk store, or None when there is none yet (nobody can have subscribed) or no instance
    at all (the command itself then says so)."""
    if instance is None or not Path(instance.helpdesk_db).exists():
        return None
    return Store(instance.helpdesk_db)


def changes(before: WatchedMember | None, after: WatchedMember) -> list[tuple[str, str]]:
    """(key, text) for each change between two snapshots of one doctor (records.watch)."""
    out = []
    if before is not None and before.status and after.status and before.status != after.status:
        out.append((f"status:{after.status}", STATUS_CHANGED.format(before=before.status_ja, after=after.status_ja)))
    old = {a.number: a for a in (before.applications if before else ())}
    for app in after.applications:
        if before is None or old.get(app.number) == app:
            continue
        text = STAGE_CHANGED.format(kind=app.kind_ja, number=app.number, status=app.status_ja)
        if app.reason:
            text += "\n" + RETURN_REASON.format(reason=app.reason)
        out.append((f"application:{app.number}:{app.stage}:{app.state}", text))
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
        self.before = watched_members(instance.records_db, list(self.watched))

    @classmethod
    def open(cls, instance) -> "SubscriberNotices":
        return cls(instance, _open_store(instance))

    def queue(self) -> int:
        if not self.watched:
            return 0
        after = watched_members(self.instance.records_db, list(self.watched))
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


RELEASE_NOTES = Path(__file__).resolve().parents[2] / "release_notes"


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
