"""`/metrics` in Prometheus' text format, counted across every process of one server.

prometheus-client's multiprocess mode: each process (every gunicorn worker, the Telegram process)
writes its counters to small mmap'ed files in `PROMETHEUS_MULTIPROC_DIR`, and a scrape of any worker
sums them all. The directory is `metrics/` in the instance folder unless the operator sets the
variable; `use_instance_dir` sets it before prometheus_client is first imported (the library picks
its value class at import), which is why nothing here imports it at module level. A process without
the variable (a test, a one-off command) counts in its own memory instead.

What is counted, with labels from small fixed sets only (never a person, a question or an id):
- `helpdesk_messages_total{channel}` and `helpdesk_answers_total{channel,outcome}` (answered, choices,
  unknown, handoff, other), recorded by the adapters after a reply (`record_turn`);
- `helpdesk_escalations_total{channel}` (a ticket opened) and `helpdesk_feedback_total{helpful}`;
- `helpdesk_search_seconds` and `helpdesk_request_seconds{route,method,status}` histograms, the route
  being the URL rule (`/api/conversations/<conversation_id>/messages`), not the path;
- gauges read from the databases at scrape time, so they are right whichever process changed them:
  `helpdesk_tickets_open`, `helpdesk_outbox_backlog`, `helpdesk_outbox_oldest_seconds`,
  `helpdesk_index_age_seconds`, `helpdesk_member_data_age_seconds`, `helpdesk_telegram_heartbeat_age_seconds`,
  and `helpdesk_ready{part}` (1 or 0 per part of /readyz, handlers/web/health.py): an alert watches the
  degraded parts there, which do not make /readyz fail.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from bot.channels import PUBLIC

ENV = "PROMETHEUS_MULTIPROC_DIR"
OUTCOMES = {"answer": "answered", "lookup": "answered", "choices": "choices", "lookup_choices": "choices",
            "next_step": "choices", "unknown": "unknown", "out_of_scope": "unknown", "handoff": "handoff",
            "handoff_offer": "handoff", "ticket": "handoff"}
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def use_instance_dir(instance_path, *, fresh: bool = False) -> Path:
    """Point this process (and the processes it starts) at the instance's metrics folder, unless the
    operator chose another. `fresh` (the web server starting) removes the files of processes that are
    no longer running, so the folder does not grow with every restart over the years; the files of a
    live Telegram process are kept."""
    os.environ.setdefault(ENV, str(Path(instance_path).resolve() / "metrics"))
    folder = Path(os.environ[ENV])
    folder.mkdir(parents=True, exist_ok=True)
    if fresh:
        for file in folder.glob("*.db"):
            pid = file.stem.rsplit("_", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                file.unlink(missing_ok=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiprocess() -> bool:
    return bool(os.environ.get(ENV))


class _Metrics:
    """This process's metric objects, made once (a registry would refuse the second app of a test)."""

    def __init__(self):
        from prometheus_client import Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # the *_created series only double the output; multiprocess mode has none
        self.messages = Counter("helpdesk_messages", "Messages received from users, by channel",
                                ["channel"], registry=None)
        self.answers = Counter("helpdesk_answers", "Replies by channel and outcome",
                               ["channel", "outcome"], registry=None)
        self.escalations = Counter("helpdesk_escalations", "Tickets opened for the operations desk",
                                   ["channel"], registry=None)
        self.feedback = Counter("helpdesk_feedback", "役に立った / 役に立たなかった clicks",
                                ["helpful"], registry=None)
        self.search = Histogram("helpdesk_search_seconds", "Knowledge-base search time",
                                buckets=LATENCY_BUCKETS, registry=None)
        self.requests = Histogram("helpdesk_request_seconds", "HTTP request time by route rule",
                                  ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=None)

    def all(self):
        return (self.messages, self.answers, self.escalations, self.feedback, self.search, self.requests)


_made: _Metrics | None = None
_lock = threading.Lock()


def metrics() -> _Metrics:
    global _made
    if _made is None:
        with _lock:
            if _made is None:
                _made = _Metrics()
    return _made


def _channel(channel: str) -> str:
    return channel if channel in PUBLIC else "other"


def record_turn(channel: str, kind: str | None, *, opened_ticket: bool = False) -> None:
    """One user message and, unless the bot stayed silent (an agent holds the conversation), its
    reply's outcome, and the ticket it opened if it did (`Turn.opened_ticket`). Called by each adapter
    after `Core.reply`, never by the core."""
    m, label = metrics(), _channel(channel)
    m.messages.labels(label).inc()
    if kind is not None:
        m.answers.labels(label, OUTCOMES.get(kind, "other")).inc()
    if opened_ticket:
        record_escalation(channel)


def record_escalation(channel: str) -> None:
    metrics().escalations.labels(_channel(channel)).inc()


def record_feedback(helpful: bool) -> None:
    metrics().feedback.labels("yes" if helpful else "no").inc()


@contextmanager
def search_timer():
    started = time.perf_counter()
    try:
        yield
    finally:
        metrics().search.observe(time.perf_counter() - started)


class _DatabaseGauges:
    """Gauges read from the instance's databases at scrape time (a prometheus-client custom collector)."""

    def __init__(self, instance, config=None):
        self.instance, self.config = instance, config

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from handlers.web import health

        tickets = _quietly(health.tickets_open, self.instance)
        if tickets is not None:
            yield GaugeMetricFamily("helpdesk_tickets_open", "Tickets neither resolved nor closed", value=tickets)
        outbox = _quietly(health.outbox_facts, self.instance)
        if outbox is not None:
            yield GaugeMetricFamily("helpdesk_outbox_backlog", "Messages waiting to be sent",
                                    value=outbox["backlog"])
            yield GaugeMetricFamily("helpdesk_outbox_oldest_seconds", "Age of the oldest message waiting",
                                    value=outbox["oldest_age_seconds"] or 0)
        imports = _quietly(health.import_facts, self.instance)
        if imports is not None:
            imports = {"members": _quietly(health.member_data_facts, self.instance), **imports}
            age = GaugeMetricFamily("helpdesk_import_age_seconds", "Seconds since each kind's last import",
                                    labels=["kind"])
            rows = GaugeMetricFamily("helpdesk_import_rows", "Rows of each kind's last import, by effect",
                                     labels=["kind", "effect"])
            for kind, last in imports.items():
                if last and not last.get("demo"):
                    age.add_metric([kind], time.time() - datetime.fromisoformat(last["at"]).timestamp())
                    for effect in ("added", "changed", "deleted", "rejected"):
                        rows.add_metric([kind, effect], last.get(effect) or 0)
            yield age
            yield rows
        if self.instance.kb_index.exists():
            yield GaugeMetricFamily("helpdesk_index_age_seconds", "Seconds since the index was written",
                                    value=time.time() - self.instance.kb_index.stat().st_mtime)
        if self.config is not None:
            yield from self._readiness()

    def _readiness(self):
        from prometheus_client.core import GaugeMetricFamily

        from handlers.web import health

        checks = health.readiness(self.instance, self.config)["checks"]
        ready = GaugeMetricFamily("helpdesk_ready", "1 when the part of /readyz is ready, else 0", labels=["part"])
        for part, result in checks.items():
            ready.add_metric([part], 1 if result["ok"] else 0)
        yield ready
        member = checks["member_data"]
        if "age_seconds" in member:
            yield GaugeMetricFamily("helpdesk_member_data_age_seconds", "Seconds since the last member data sync",
                                    value=member["age_seconds"])
        heartbeat = self.instance.path / health.TELEGRAM_HEARTBEAT
        if heartbeat.exists():
            yield GaugeMetricFamily("helpdesk_telegram_heartbeat_age_seconds",
                                    "Seconds since the Telegram process last heard from the Bot API",
                                    value=time.time() - heartbeat.stat().st_mtime)


def _quietly(read, instance):
    """A scrape must not fail because one table is busy or not there yet: leave that gauge out."""
    import sqlite3

    try:
        return read(instance)
    except (sqlite3.Error, ValueError, OSError):
        return None


def exposition(instance, config=None) -> tuple[bytes, str]:
    """The text of one scrape: every process's counters (or this process's), plus the gauges (with
    `config`, the settings, also the readiness of each part)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    if multiprocess():
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry)
    else:
        for metric in metrics().all():
            registry.register(metric)
    registry.register(_DatabaseGauges(instance, config))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def init_app(app) -> None:
    """Time every request by route rule and serve `/metrics`.

    `/metrics` is meant for the Prometheus server on the private network: deploy/nginx.conf does not
    pass it through from the internet.
    """
    from flask import Response, current_app, g, request

    metrics()  # create the files of this process now, not inside the first request

    @app.before_request
    def start_timer():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def observe(response):
        started = g.get("metrics_started")
        if started is not None and request.url_rule is not None:
            metrics().requests.labels(request.url_rule.rule, request.method,
                                      f"{response.status_code // 100}xx").observe(time.perf_counter() - started)
        return response

    def scrape():
        body, content_type = exposition(current_app.extensions["helpdesk"].instance, current_app.config)
        return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})

    app.add_url_rule("/metrics", "metrics", scrape, methods=["GET"])
