"""Notices to subscribed doctors, queued in the outbox by the jobs that change what they are told about.

Built for every process by helpdesk/services.py (`build_notices`) and called as an explicit step by
the commands that change things: each `helpdesk sync-*` reads, before its import, what every
subscribed, linked doctor would be told about (membership status, each application's stage, state
and return reason) and, after it, queues one row per change (`Notices.watch()`, then `queue()`);
`helpdesk index` queues a release note not seen before for every subscribed chat
(`announce_release_notes`). The rows are plain text (`"format": "plain"`, bot/messaging/outbox.py):
the channel's sender draws them (handlers/telegram/outbox.py). Keys make each notice once only, also
when a job is run twice; the first index run only records the release notes that exist, so
subscribers are not flooded with old news.

What a doctor is told about is read by `records.watch.watched_members` (the system comparing two
snapshots for the doctor's own chat, not a person's lookup, so not in the access log).
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Callable

from bot.channels import TELEGRAM
from bot.messaging.outbox import PLAIN, Outbox
from bot.store.database import Store
from records.watch import WatchedMember, watched_members

STAGE_CHANGED = "{kind}（申請番号 {number}）の状況が変わりました：{status}"
RETURN_REASON = "差戻しの理由：{reason}"
STATUS_CHANGED = "会員状態が「{before}」から「{after}」に変わりました。"
NEW_RELEASE_NOTE = "新しいリリースノートが公開されました：{title}"
FOOTER = "（MAMISヘルプデスクからのお知らせ。停止するには /notify off）"
SEEN_KEY = "release_notes_seen"


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


def notice(text: str) -> dict:
    """An outbox payload of plain text with the footer that says how to stop notices."""
    return {"format": PLAIN, "text": text + "\n\n" + FOOTER}


class MemberWatch:
    """One import's notification step: what subscribed doctors would be told about, read before the
    import (`Notices.watch()`); `queue()` reads it again after and queues one row per change. The same
    file imported twice changes nothing the second time, so it queues nothing."""

    def __init__(self, notices: "Notices"):
        self.notices = notices
        self.store = notices.open_store(create=False)  # none yet: nobody can have subscribed
        self.outbox = Outbox(self.store, notices.channel) if self.store else None
        self.watched = ({s.member_number: s for s in self.outbox.subscribers() if s.member_number}
                        if self.outbox else {})
        self.before = watched_members(notices.records_db, list(self.watched))

    def queue(self) -> int:
        if not self.watched:
            return 0
        after = watched_members(self.notices.records_db, list(self.watched))
        now = self.notices.now()
        queued = 0
        for number, state in after.items():
            subscriber = self.watched[number]
            for key, text in changes(self.before.get(number), state):
                queued += self.outbox.notify(subscriber.chat_id, f"{key}:{subscriber.chat_id}:{now}", notice(text), now)
        return queued

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


class Notices:
    """Where notices come from (the records, the index, the release notes) and where they go (the
    outbox of `channel` in the help desk database)."""

    def __init__(self, helpdesk_db: Path, records_db: Path, kb_index: Path, release_notes: Path,
                 public_url: str | None, clock: Callable[[], datetime], channel: str = TELEGRAM):
        self.helpdesk_db, self.records_db, self.kb_index = Path(helpdesk_db), Path(records_db), Path(kb_index)
        self.release_notes_folder, self.public_url = Path(release_notes), public_url
        self.clock, self.channel = clock, channel

    def now(self) -> str:
        return self.clock().isoformat(timespec="seconds")

    def open_store(self, *, create: bool) -> Store | None:
        return Store(self.helpdesk_db) if create or self.helpdesk_db.exists() else None

    def watch(self) -> MemberWatch:
        return MemberWatch(self)

    def article_url(self, slug: str) -> str | None:
        return f"{self.public_url.rstrip('/')}/kb/{slug}" if self.public_url else None

    def release_notes(self) -> list[tuple[str, str]]:
        """(slug, title) of every release note (a file of the folder, slug = file name) in the index."""
        if not self.kb_index.exists():
            return []
        from kb.search import Searcher

        searcher = Searcher(self.kb_index)
        try:
            found = (searcher.article(path.stem) for path in sorted(self.release_notes_folder.glob("*.md")))
            return [(a.slug, a.title) for a in found if a is not None]
        finally:
            searcher.close()

    def announce_release_notes(self) -> int:
        """Queue each release note indexed for the first time for every subscribed chat; the count."""
        store = self.open_store(create=True)
        try:
            outbox = Outbox(store, self.channel)
            recorded = outbox.meta(SEEN_KEY)  # None: the first run, which only records what exists
            seen = set(json.loads(recorded or "null") or ())
            notes = self.release_notes()
            new = [(slug, title) for slug, title in notes if slug not in seen]
            outbox.set_meta(SEEN_KEY, json.dumps(sorted(seen | {slug for slug, _ in notes})))
            if recorded is None or not new:
                return 0
            now, queued = self.now(), 0
            for subscriber in outbox.subscribers():
                for slug, title in new:
                    url = self.article_url(slug)
                    text = NEW_RELEASE_NOTE.format(title=title) + (f"\n{url}" if url else "")
                    queued += outbox.notify(subscriber.chat_id, f"release:{slug}:{subscriber.chat_id}", notice(text), now)
            return queued
        finally:
            store.close()
