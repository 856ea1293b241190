"""Rate-limit counters in process memory, without a thread per request.

limits' `memory://` storage starts a fresh `threading.Timer` (10 ms) whenever none is alive, which
under steady load means a new thread every few requests, each start waiting for the GIL: about a
millisecond per request and a long latency tail. Counters already expire lazily when read (`get`),
so this variant only sweeps stale keys now and then, from the request that happens to pass by.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

from flask import current_app
from limits.storage import MemoryStorage

from storage import ratelimit as shared  # registers the helpdesk-sqlite:// storage with limits

SCHEME = "helpdesk-memory"


def storage_uri(uri: str, instance_path) -> str:
    """`helpdesk-sqlite://` without a path means the instance folder's ratelimit.sqlite, the counters
    every worker of this server shares; any other URI is passed to flask-limiter as it is."""
    if uri.rstrip("/") == f"{shared.SCHEME}:":
        return f"{shared.SCHEME}://{(Path(instance_path) / shared.FILE_NAME).resolve()}"
    return uri


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


def limited(limiter, setting: str, *, message: str, key_func=None, scope: str | None = None):
    """Decorate a view with the limit named by `setting`, read from the app's config on each request
    (so a test or the benchmark can set it). With `scope`, every view decorated with the same scope
    shares one counter (sign-in by form and by JSON count together).

    flask-limiter marks the function it decorates with its limiter; a fresh wrapper per app keeps one
    app's limiter off the module-level view that the next app also registers. A view this limiter has
    already decorated is decorated directly: flask-limiter then checks all its limits once, in the
    innermost wrapper, where a wrapper in between would make it count every request twice.
    """

    def decorate(view):
        # The mark is a weak proxy of the limiter: compare with ==, which the proxy passes through.
        if getattr(view, "__wrapper-limiter-instance", None) == limiter:
            fresh = view
        else:
            @functools.wraps(view, updated=())
            def fresh(*args, **kwargs):
                return view(*args, **kwargs)

        value = lambda: current_app.config[setting]  # noqa: E731
        if scope:
            return limiter.shared_limit(value, scope, key_func=key_func, methods=["POST"],
                                        error_message=message)(fresh)
        return limiter.limit(value, key_func=key_func, error_message=message)(fresh)

    return decorate
