"""`helpdesk serve`: run the web app under a production WSGI server (gunicorn, or waitress).

Either way, a request reaches a thread only once waitress has read all of it: under gunicorn each
worker process serves with waitress's buffering event loop (`buffering_worker_class`), so clients
that send slowly hold a socket and a buffer, never a thread (docs/security.md, "Slow clients").

The command builds nothing: the index comes from `helpdesk index`. It checks the instance once in
this process (settings, migrations, the secret key), closes what that opened, and lets each gunicorn
worker build its own app after the fork, since SQLite connections must not cross a fork.
"""
from __future__ import annotations

import os
import re

import click

from handlers.cli.config import setting_option  # options' defaults and help come from helpdesk.settings
from helpdesk.instance import Instance
from handlers.server.limits import connections_per_address, limit_channels
from helpdesk.settings import BY_NAME

SERVERS = ("gunicorn", "waitress")


def app_config(instance: Instance, host: str = "127.0.0.1", port: int = 8000) -> dict:
    """The app's settings from the command line: the instance, and the address it listens on, from
    which links to itself are built when PUBLIC_URL is not set (never from a request's Host header)."""
    return {"INSTANCE_PATH": str(instance.path), "HOST": host, "PORT": port}


def check_instance(instance: Instance) -> None:
    """Fail early, in Japanese, with what to do, instead of inside every worker."""
    from handlers.web.app import BadSetting, create_app

    if not instance.kb_index.exists():
        raise click.ClickException(
            f"検索索引がありません（{instance.kb_index}）。先に `helpdesk --instance {instance.path} index` を実行してください。"
        )
    try:
        app = create_app(app_config(instance))
    except BadSetting as e:
        raise click.ClickException(f"設定に誤りがあります: {e}（{instance.config_file} を確認してください）")
    app.extensions["helpdesk"].close()


def warm_app(instance: Instance, host: str, port: int):
    """The app of one serving process, with its searcher already open (in the worker, after the fork),
    so the first questions are not slow and memory does not step up under load."""
    from handlers.web.app import create_app

    app = create_app(app_config(instance, host, port))
    app.extensions["helpdesk"].core()
    return app


#: What `serve` prints once it listens, before its URL: the port it bound, so a caller that passed
#: `--port 0` (the system picks a free port, which no other process can take meanwhile) learns it.
STARTED = "MAMIS ヘルプデスクを起動しました: "


def started_url(output: str) -> str | None:
    """The base URL (no trailing slash) in a `helpdesk serve`'s output once it listens, else None:
    for the tests, benchmarks and scripts that start it on port 0."""
    found = re.search(re.escape(STARTED) + r"(http://[^/\s]+)/", output)
    return found[1] if found else None


def url_for_host(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


# What waitress may hold per process: a slow client costs a buffer and a socket, never a thread, but
# the number of sockets is still finite. A channel idle this long is closed.
# Bodies up to 1 MB are read whole so that the app answers an oversized one with its own Japanese 413
# (MAX_CONTENT_LENGTH is far lower); waitress refuses anything larger itself.
# Forwarded headers (X-Forwarded-For, -Proto, -Host) are passed on untouched: the app's ProxyFix,
# configured by TRUSTED_PROXIES, is the one place that decides whom to believe (none by default).
# waitress would otherwise delete them before the app sees them, so that behind nginx every client
# counted as 127.0.0.1 in every per-address limit (issue 19, item 2).
# The event loop uses poll(), as the gunicorn worker's does: select() cannot watch a file number past
# 1023, and a thousand connections plus the process's own files pass it (issue 19, item 3).
WAITRESS_OPTIONS = {"connection_limit": 1000, "channel_timeout": 30, "cleanup_interval": 10,
                    "max_request_body_size": 1 << 20, "ident": "mamis-helpdesk",
                    "clear_untrusted_proxy_headers": False, "asyncore_use_poll": True}


def create_limited_server(app, channels: dict, threads: int, **where):
    """A waitress server for `app` on `where` (host and port, or sockets), registered in the map
    `channels`, whose connections are limited per client address and in time (handlers/server/limits.py).

    Besides the `threads` that answer requests, the pool gets one thread per slot of held requests
    (LIVE_WAITS, bot/messaging/live.py): at most that many requests wait at once, so they never take the
    threads that answer chats.
    """
    from waitress.server import create_server

    threads += int(app.config.get("LIVE_WAITS") or 0)
    server = create_server(app, map=channels, threads=threads, **where, **WAITRESS_OPTIONS)
    limit_channels(channels, connections_per_address(app))
    return server


def buffering_worker_class():
    """A gunicorn worker that serves its share of the listening socket with waitress.

    gunicorn's own workers give a thread to a connection as soon as its first byte arrives and keep it
    while the client trickles in the headers and body, so a handful of slow clients can hold every
    thread (issue 9, item 3). waitress reads each request completely on its event loop, buffering the
    body (to a temporary file past 512 KB), and only then hands it to one of its threads. gunicorn
    still runs the processes: it forks the workers after binding, restarts one that dies, and stops
    them gracefully; this class only swaps the per-process request loop.
    """
    from gunicorn.workers.base import Worker
    from waitress import wasyncore

    class WaitressWorker(Worker):
        def run(self):
            channels: dict = {}
            server = create_limited_server(self.wsgi, channels, self.cfg.threads,
                                           sockets=[s.sock for s in self.sockets])
            try:
                while self.alive and self.ppid == os.getppid():
                    self.notify()  # the arbiter's heartbeat: a worker silent for `timeout` s is replaced
                    wasyncore.loop(timeout=1.0, map=channels, use_poll=server.adj.asyncore_use_poll, count=1)
            finally:
                server.task_dispatcher.shutdown()
                wasyncore.close_all(channels)

    return WaitressWorker


def run_gunicorn(instance: Instance, host: str, port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    bound = {"port": port}

    def when_ready(server):
        # With --port 0 the port is known only now; the workers, forked after this, build the app with it.
        bound["port"] = server.LISTENERS[0].sock.getsockname()[1] if server.LISTENERS else port
        click.echo(f"{STARTED}{url_for_host(host, bound['port'])} "
                   f"（gunicorn、ワーカー {workers}、スレッド {threads}。終了は Ctrl+C）", err=False)

    class HelpdeskGunicorn(BaseApplication):
        def load_config(self):
            options = {
                "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": buffering_worker_class(),
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "warning",
                "timeout": 30,
                "graceful_timeout": 10,
                "keepalive": 5,
                "when_ready": when_ready,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return warm_app(instance, host, bound["port"])

    HelpdeskGunicorn().run()


def run_waitress(instance: Instance, host: str, port: int, threads: int) -> None:
    app = warm_app(instance, host, port)
    server = create_limited_server(app, {}, threads, host=host, port=port)
    app.config["PORT"] = server.effective_port  # the port bound, when asked for port 0
    click.echo(f"{STARTED}{url_for_host(host, server.effective_port)} "
               f"（waitress、スレッド {threads}。終了は Ctrl+C）")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


@click.command("serve")
@setting_option("HOST", "--host")
@setting_option("PORT", "--port", type=click.IntRange(0, 65535))
@setting_option("WORKERS", "--workers", type=click.IntRange(1, 64))
@setting_option("THREADS", "--threads", type=click.IntRange(1, 256))
@setting_option("SERVER", "--server", "server_name", type=click.Choice(SERVERS))
@setting_option("LOG_FORMAT", "--log-format", type=click.Choice(("json", "text")))
@click.pass_obj
def serve(instance: Instance, host, port, workers, threads, server_name, log_format):
    """Webチャット・API・記事ページのサーバーを起動し、URL を表示します（索引は `helpdesk index` で作成）。"""
    if not isinstance(instance, Instance):
        raise click.ClickException("インスタンスフォルダが指定されていません。`helpdesk --instance DIR serve` で起動してください。")
    from handlers.web.logs import configure as configure_logs
    from handlers.web.metrics import use_instance_dir

    use_instance_dir(instance.path, fresh=True)  # before anything imports prometheus_client
    # Before the first app logs anything, so that every line of the server has one form; the workers'
    # apps read the same setting from the environment they inherit.
    os.environ[BY_NAME["LOG_FORMAT"].env_name] = log_format
    configure_logs(form=log_format)
    check_instance(instance)
    if server_name == "waitress":
        run_waitress(instance, host, port, threads)
    else:
        run_gunicorn(instance, host, port, workers, threads)
