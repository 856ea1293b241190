"""Rate-limit counters in process memory, without a thread per request.

limits' `memory://` storage starts a fresh `threading.Timer` (10 ms) whenever none is alive, which
under steady load means a new thread every few requests, each start waiting for the GIL: about a
millisecond per request and a long latency tail. Counters already expire lazily when read (`get`),
so this variant only sweeps stale keys now and then, from the request that happens to pass by.
"""
from __future__ import annotations

import time

from limits.storage import MemoryStorage

SCHEME = "helpdesk-memory"


class SweepingMemoryStorage(MemoryStorage):
    STORAGE_SCHEME = [SCHEME]  # registered with limits by its metaclass when this module is imported
    SWEEP_EVERY = 30.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()
        self._next_sweep = time.monotonic() + self.SWEEP_EVERY

    # Replaces MemoryStorage.__schedule_expiry (name-mangled), called on every hit.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_EVERY
            self._MemoryStorage__expire_events()
