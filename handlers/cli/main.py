"""The `helpdesk` command: one click group, every generated file under `--instance`.

Commands translate arguments and domain errors; the work lives in kb/, bot/, records/.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from bot import IndexMissing
from bot.desk.hours import BusinessHours
from helpdesk.errors import describe
from helpdesk.instance import Instance
from helpdesk.services import ARTICLE_SOURCES as DEFAULT_SOURCES
from helpdesk.services import build_notices
from helpdesk.settings import BY_NAME, SettingError, defaults, load_settings

INSTANCE = BY_NAME["INSTANCE_PATH"]


@click.group()
@click.option(
    "--instance",
    "instance_path",
    default=INSTANCE.default,
    show_default=True,
    envvar=INSTANCE.env_name,
    show_envvar=True,
    type=click.Path(file_okay=False),
    help=INSTANCE.help,
)
@click.pass_context
def cli(ctx, instance_path):
    """MAMIS ヘルプデスク: ナレッジベース検索、Webチャット、問い合わせ対応。"""
    folder = Path(instance_path).resolve()
    if not folder.is_dir() and ctx.invoked_subcommand not in STARTS_AN_INSTANCE:
        # Run outside the project folder, the default `instance` is not there: say where we looked
        # rather than make an empty folder and report the missing index as a passing outage.
        raise click.ClickException(
            f"インスタンスフォルダ {folder} がありません。インスタンスのあるフォルダで実行するか、"
            f"--instance（環境変数 {INSTANCE.env_name}）で場所を指定してください。"
            "新しく作るときは helpdesk --instance <フォルダ> index から始めます。")
    ctx.obj = Instance.at(folder)
    _use_vectors_setting(ctx.obj)


#: The commands that may start a new instance folder; the others need one that exists.
STARTS_AN_INSTANCE = frozenset({"index", "fetch-vectors", "eval", "config", "demo-data", "demo-accounts",
                                "sync-members", "serve", "telegram", "restore", "staff", "agent"})


def _use_vectors_setting(instance: Instance) -> None:
    """VECTORS_PATH from config.toml reaches kb.vectors, and the processes this one starts, through
    the environment variable it is read from (as PROMETHEUS_MULTIPROC_DIR does for metrics)."""
    from kb import vectors

    try:
        configured = load_settings(instance.path)["VECTORS_PATH"]
    except SettingError:
        return  # the command that reads the settings reports it
    if configured:
        os.environ[vectors.ENV] = configured


def _announce_release_notes(instance: Instance) -> None:
    """The index's notification step: a release note indexed for the first time becomes one outbox
    row per subscribed chat (bot/messaging/notices.py); the bot process sends them."""
    try:
        notices = build_notices(instance.path)
    except SettingError:  # reported by the commands that need the settings; announced without PUBLIC_URL
        notices = build_notices(instance.path, defaults())
    queued = notices.announce_release_notes()
    if queued:
        click.echo(f"Telegram の通知 {queued} 件を送信待ちにしました。", err=True)


def _echo_build_report(report) -> None:
    click.echo(f"索引: 追加・更新 {report.indexed} 件、変更なし {report.unchanged} 件、削除 {report.removed} 件")
    for path, reason in report.broken:
        click.echo(f"スキップ: {path}: {reason}", err=True)


@cli.command("index")
@click.option(
    "--source",
    "extra",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='追加のFAQコーパス（JSON Lines: {"id","title","body"} または {"id","question","answer"}）。複数指定可',
)
@click.pass_obj
def index_command(instance: Instance, extra):
    """kb/articles と release_notes から検索索引を作成・更新します（変更のないファイルは処理しません）。

    壊れたファイルがあれば理由を表示して残りを索引し、終了コード 1 で知らせます。
    索引のあと、初めて索引されたリリースノートのお知らせを、Telegram で通知を希望した利用者に
    送信待ちにします（最初の索引では既存のリリースノートを記録するだけで、お知らせはしません）。
    """
    from kb.indexer import build_index

    from kb import vectors

    try:
        report = build_index(DEFAULT_SOURCES, instance.kb_index, extra=extra)
        _echo_build_report(report)
        found = vectors.load()
        if found is None:
            click.echo(f"単語ベクトル: なし（{vectors.folder()} にありません。helpdesk fetch-vectors で取得すると"
                       "言い換えた質問にも答えられます）。語の一致だけで検索します")
        else:
            click.echo(f"単語ベクトル: あり（{found.source}、{vectors.folder()}）")
    finally:
        _announce_release_notes(instance)  # the notification step, also after a failed build
    if report.broken:
        sys.exit(1)


@cli.command("fetch-vectors")
@click.option("--wheel", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="ダウンロード済みの ja-ginza の wheel を使います（ハッシュは同じく確認します）")
def fetch_vectors_command(wheel):
    """検索用の単語ベクトル（ja-ginza 5.3.0 の chiVe）を取得し、ハッシュを確認して保存します。

    保存先は設定 VECTORS_PATH（既定 ~/.local/share/mamis-helpdesk/vectors）。取得済みなら何もしません。
    """
    from kb import vector_fetch, vectors

    try:
        folder = vector_fetch.fetch(wheel=wheel)
    except vector_fetch.FetchFailed as e:
        raise click.ClickException(str(e))
    click.echo(f"単語ベクトル: {vectors.source_of(folder)}（{folder}）")


def _open_searcher(db_path: Path):
    from kb.search import Searcher

    if not db_path.exists():
        raise click.ClickException(describe(IndexMissing(db_path)).message)
    return Searcher(db_path)


def _echo_explanation(explanation: dict | None, indent: str) -> None:
    """Why a result ranked, was judged and got its section (kb.search `explain`), for article authors."""
    from kb.explain import explanation_lines

    for line in explanation_lines(explanation):
        click.echo(indent + line)


@cli.command("search")
@click.argument("query")
@click.option("--k", default=5, show_default=True, type=click.IntRange(1, 100), help="表示する件数")
@click.option("--json", "as_json", is_flag=True, help="JSON で出力します")
@click.option("--explain", is_flag=True, help="順位・確信度・選ばれた節の根拠を表示します（記事を直す人向け）")
@click.pass_obj
def search_command(instance: Instance, query, k, as_json, explain):
    """質問文で記事を検索します。"""
    searcher = _open_searcher(instance.kb_index)
    results = searcher.search(query, k=k, explain=explain)
    if as_json:
        payload = {"query": query, "results": [r.as_dict() for r in results]}
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    if not results:
        desk = BusinessHours.from_settings(load_settings(instance.path)).contact()
        click.echo(f"該当する記事が見つかりませんでした。言い換えて検索するか、{desk}へお問い合わせください。")
        return
    for i, r in enumerate(results, 1):
        click.echo(f"{i}. {r.title} [{r.slug}] 確信度 {r.confidence:.2f}（{r.updated} 更新）")
        if explain:
            _echo_explanation(r.explanation, "   ")
        click.echo("   " + r.passage.replace("\n", "\n   ")[:300])


@cli.command("eval")
@click.option(
    "--questions",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='評価用の質問（JSON Lines: {"query", "relevant": [id,...], "grades"?, "phrases"?}）',
)
@click.option(
    "--corpus",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="このコーパスだけで一時索引を作って評価します（省略時はナレッジベース）",
)
@click.option("--json", "as_json", is_flag=True, help="JSON で出力します")
@click.option("--explain", is_flag=True, help="外れた質問ごとに、上位の結果の順位・確信度・節の根拠を表示します")
@click.pass_obj
def eval_command(instance: Instance, questions, corpus, as_json, explain):
    """検索品質を評価します（hit@1, hit@3, MRR@10, Recall@10, nDCG@10, 回答率, 正答率, 棄却率）。"""
    from kb.evaluate import BadQuestionFile, evaluate, load_questions
    from kb.indexer import build_index

    try:
        qs = load_questions(questions)
    except BadQuestionFile as e:
        raise click.ClickException(f"評価ファイルを読めません: {e}")
    with tempfile.TemporaryDirectory() as tmp:
        if corpus:
            db = Path(tmp) / "corpus.sqlite"
            report = build_index([], db, extra=[corpus])
        else:
            db = instance.kb_index
            report = build_index(DEFAULT_SOURCES, db)
        for path, reason in report.broken:
            click.echo(f"スキップ: {path}: {reason}", err=True)
        searcher = _open_searcher(db)
        try:
            result = evaluate(searcher, qs, explain=explain)
        finally:
            searcher.close()
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'指標':<16}値")
    for key in ("n", "hit@1", "hit@3", "mrr@10", "recall@10", "ndcg@10", "answered", "passage@1", "answered_right",
                "abstained"):
        value = result[key]
        click.echo(f"{key:<16}{'-' if value is None else value}")
    if result["misses"]:
        click.echo(f"\n外れ {len(result['misses'])} 件:")
        for m in result["misses"][:20]:
            click.echo(f"  {m['query']} → 期待 {m['expected']} / 結果 {m['got']}（確信度 {m['confidence']}）")
            for j, explained in enumerate(m.get("explain", []), 1):
                click.echo(f"    {j}. [{explained['slug']}]")
                _echo_explanation(explained, "       ")


def _register_commands() -> None:
    """Attach the commands that live beside the code they drive."""
    from handlers.server.command import serve
    from handlers.cli.config import config_command
    from handlers.cli.staff import demo_accounts, staff
    from handlers.cli.records import SYNC_COMMANDS, demo_data

    from handlers.cli.ops import COMMANDS as OPS_COMMANDS

    from handlers.cli.agents import agent
    from handlers.cli.telegram import telegram

    for command in (serve, config_command, demo_data, *SYNC_COMMANDS, staff, demo_accounts, agent, *OPS_COMMANDS,
                    telegram):
        cli.add_command(command)
    for command in cli.commands.values():
        # `helpdesk --help` lists each command with its whole first paragraph, wrapped, not cut at
        # the terminal's width with "...".
        command.short_help = command.short_help or (command.help or "").split("\n\n", 1)[0].replace("\n", "")


_register_commands()
