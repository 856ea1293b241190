"""`helpdesk serve`: run the web app under a production WSGI server (gunicorn, or waitress).

The command builds nothing: the index comes from `helpdesk index`. It checks the instance once in
this process (settings, migrations, the secret key), closes what that opened, and lets each gunicorn
worker build its own app after the fork, since SQLite connections must not cross a fork.
"""
from __future__ import annotations

import click

from handlers.instance import Instance

SERVERS = ("gunicorn", "waitress")


def app_config(instance: Instance) -> dict:
    return {"INSTANCE_PATH": str(instance.path)}


def check_instance(instance: Instance) -> None:
    """Fail early, in Japanese, with what to do, instead of inside every worker."""
    from handlers.web import BadSetting, create_app

    if not instance.kb_index.exists():
        raise click.ClickException(
            f"検索索引がありません（{instance.kb_index}）。先に `helpdesk --instance {instance.path} index` を実行してください。"
        )
    try:
        app = create_app(app_config(instance))
    except BadSetting as e:
        raise click.ClickException(f"設定に誤りがあります: {e}（{instance.config_file} を確認してください）")
    app.extensions["helpdesk"].close()


def warm_app(instance: Instance):
    """The app of one serving process, with its searcher already open (in the worker, after the fork),
    so the first questions are not slow and memory does not step up under load."""
    from handlers.web import create_app

    app = create_app(app_config(instance))
    app.extensions["helpdesk"].core()
    return app


def url_for_host(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def run_gunicorn(instance: Instance, host: str, port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    def when_ready(server):
        bound = server.LISTENERS[0].sock.getsockname()[1] if server.LISTENERS else port
        click.echo(f"MAMIS ヘルプデスクを起動しました: {url_for_host(host, bound)} "
                   f"（gunicorn、ワーカー {workers}、スレッド {threads}。終了は Ctrl+C）", err=False)

    class HelpdeskGunicorn(BaseApplication):
        def load_config(self):
            options = {
                "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread" if threads > 1 else "sync",
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
            return warm_app(instance)

    HelpdeskGunicorn().run()


def run_waitress(instance: Instance, host: str, port: int, threads: int) -> None:
    from waitress import create_server

    server = create_server(warm_app(instance), host=host, port=port, threads=threads, ident="mamis-helpdesk")
    click.echo(f"MAMIS ヘルプデスクを起動しました: {url_for_host(host, server.effective_port)} "
               f"（waitress、スレッド {threads}。終了は Ctrl+C）")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="待ち受けるアドレス（外部に公開するなら 0.0.0.0）")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="待ち受けるポート番号")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="gunicorn のワーカープロセス数（目安は CPU コア数。waitress では使いません）")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256),
              help="1プロセスあたりのスレッド数（gunicorn は gthread ワーカー、waitress は処理スレッド数）")
@click.option("--server", "server_name", default="gunicorn", show_default=True, type=click.Choice(SERVERS),
              help="使う WSGI サーバー")
@click.pass_obj
def serve(instance: Instance, host, port, workers, threads, server_name):
    """Webチャット・API・記事ページのサーバーを起動し、URL を表示します（索引は `helpdesk index` で作成）。"""
    if not isinstance(instance, Instance):
        raise click.ClickException("インスタンスフォルダが指定されていません。`helpdesk --instance DIR serve` で起動してください。")
    from handlers.logs import configure as json_logs
    from handlers.metrics import use_instance_dir

    use_instance_dir(instance.path, fresh=True)  # before anything imports prometheus_client
    json_logs()  # before the first app logs anything, so that every line of the server is JSON
    check_instance(instance)
    if server_name == "waitress":
        run_waitress(instance, host, port, threads)
    else:
        run_gunicorn(instance, host, port, workers, threads)
