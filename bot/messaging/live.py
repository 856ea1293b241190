"""Waiting for news in a conversation or on a ticket: long polls without busy polling or spent threads.

A held request (`GET …/messages?after=…&wait=…`, the ticket page's `/live`) waits here until a message
newer than the one it has appears in its conversation, an event on its ticket, or its time runs out.

- **One watcher per process, not a query per waiter.** A daemon thread reads `PRAGMA data_version` on
  its own read-only connection every `interval` seconds; the number changes when any other connection
  (another worker, the Telegram process, the CLI) commits. Only then does it ask which conversations
  got messages and which tickets got events since it last looked, and wakes the waiters of those
  alone. A waiter costs nothing while nothing happens to its conversation and hears of a commit within
  `interval` seconds.
- **A fixed number of slots.** Waiting holds a server thread (waitress threads are a fixed pool), so
  the server gives the pool `slots` extra threads (handlers/server/command.py) and at most `slots` requests of
  a process wait at once: the threads that answer chats are never taken. A request that finds every
  slot taken is answered at once, as without `wait`, and its client polls again after its interval.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from storage.sqlite import connect

log = logging.getLogger("helpdesk.live")

#: The longest a client may ask to be held (seconds): under nginx's and browsers' idle timeouts.
MAX_WAIT = 30
#: How often the watcher reads data_version (seconds): the most a held request lags behind a commit.
INTERVAL = 0.1


def conversation_key(conversation_id: str) -> str:
    return f"c:{conversation_id}"


def ticket_key(number: int) -> str:
    return f"t:{number}"


class Watch:
    """The waiters of one process and the thread that wakes them (started on the first wait)."""

    VERSION_SQL = "PRAGMA data_version"
    LAST_SQL = "SELECT (SELECT COALESCE(MAX(id), 0) FROM messages), (SELECT COALESCE(MAX(id), 0) FROM ticket_events)"
    NEW_MESSAGES_SQL = """
        SELECT conversation_id, MAX(id) FROM messages WHERE id > :after GROUP BY conversation_id
    """
    NEW_EVENTS_SQL = "SELECT ticket_number, MAX(id) FROM ticket_events WHERE id > :after GROUP BY ticket_number"

    def __init__(self, db_path: Path | str, slots: int, interval: float = INTERVAL):
        self.db_path, self.interval = Path(db_path), interval
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots) if slots > 0 else None
        self._waiters: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.holding = 0  # requests waiting now (a gauge for the benchmark and the metrics)

    # -- waiting -------------------------------------------------------------------------------------

    def wait(self, keys: Iterable[str], seconds: float, ready: Callable[[], object]):
        """`ready()` as soon as it is truthy, or when `seconds` have passed (its last value).

        `ready` is called once before waiting, so news already there is answered at once, and again
        after each wake-up for `keys`. Without a free slot it is called once and returned.
        """
        found = ready()
        if found or seconds <= 0 or self._free is None:
            return found
        if not self._free.acquire(blocking=False):
            return found
        keys = tuple(keys)
        woken = threading.Event()
        try:
            self._start()
            self._register(keys, woken)
            deadline = time.monotonic() + seconds
            found = ready()  # again, now that a commit after this point is sure to wake us
            while not found:
                left = deadline - time.monotonic()
                if left <= 0 or not woken.wait(left):
                    break
                woken.clear()
                found = ready()
            return found
        finally:
            self._unregister(keys, woken)
            self._free.release()

    def _register(self, keys, event) -> None:
        with self._lock:
            self.holding += 1
            for key in keys:
                self._waiters.setdefault(key, set()).add(event)

    def _unregister(self, keys, event) -> None:
        with self._lock:
            self.holding -= 1
            for key in keys:
                events = self._waiters.get(key)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._waiters[key]

    def _wake(self, keys) -> None:
        with self._lock:
            events = [e for key in keys for e in self._waiters.get(key, ())]
        for event in events:
            event.set()

    # -- the watcher -----------------------------------------------------------------------------------

    def _start(self) -> None:
        """Start the watcher in this process (lazily: never in a process that forks the workers)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="helpdesk-live", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = connect(self.db_path, readonly=True)
                    version = None
                    last_message, last_event = conn.execute(self.LAST_SQL).fetchone()
                current = conn.execute(self.VERSION_SQL).fetchone()[0]
                if current != version:
                    version = current
                    last_message, last_event = self._look(conn, last_message, last_event)
            except Exception:  # a locked or vanished file: wake everyone (they re-check) and start over
                log.exception("live: watching the help desk database failed")
                if conn is not None:
                    conn.close()
                conn = None
                with self._lock:
                    everyone = list(self._waiters)
                self._wake(everyone)
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def _look(self, conn, last_message: int, last_event: int) -> tuple[int, int]:
        """Wake the waiters of what changed since the last look; the new high-water marks."""
        keys = []
        for conversation_id, newest in conn.execute(self.NEW_MESSAGES_SQL, {"after": last_message}).fetchall():
            keys.append(conversation_key(conversation_id))
            last_message = max(last_message, newest)
        for number, newest in conn.execute(self.NEW_EVENTS_SQL, {"after": last_event}).fetchall():
            keys.append(ticket_key(number))
            last_event = max(last_event, newest)
        if keys:
            self._wake(keys)
        return last_message, last_event

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)
        self._thread = None
