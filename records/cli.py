"""`helpdesk demo-data` and `helpdesk sync-members`: the two jobs that write member data.

Both read the database path from the click context object, a
`handlers.instance.Instance`; the lead registers them on the `helpdesk` group with
`cli.add_command(demo_data)` and `cli.add_command(sync_members)`. Domain errors
become ClickException with the Japanese sentence from records.errors.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .demo import DEFAULT_SEED, generate_demo
from .errors import RecordsError, message_ja
from .schema import DEMO_LABEL
from .sync import import_members


def _records_db(instance) -> Path:
    path = getattr(instance, "records_db", None)
    if path is None:
        raise click.ClickException("インスタンスフォルダが指定されていません（ctx.obj が Instance ではありません）。")
    return Path(path)


@click.command("demo-data")
@click.option("--members", "members", type=click.IntRange(10, 1_000_000), default=20_000,
              show_default=True, help="作成する架空の会員数（全国規模は 180000）。")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="乱数の種。同じ種からは同じデータができます。")
@click.option("--force", is_flag=True,
              help="既存の会員データベースを置き換えます（デモでないデータも消えます）。")
@click.pass_obj
def demo_data(instance, members: int, seed: int, force: bool) -> None:
    """架空の会員・医療機関・手続きデータ（デモデータ）を作成します。

    作成したデータベースには「デモデータ（架空）」の印が付き、画面にも表示されます。
    """
    path = _records_db(instance)
    try:
        summary = generate_demo(path, members=members, seed=seed, force=force)
    except RecordsError as exc:
        raise click.ClickException(message_ja(exc)) from exc
    click.echo(f"{DEMO_LABEL}を作成しました: {summary.path}")
    click.echo(f"  会員 {summary.members:,} 人、医療機関 {summary.institutions:,} 件、"
               f"入会届・異動届 {summary.applications:,} 件、かかりつけ医機能報告 {summary.reports:,} 件、"
               f"郡市区等医師会 {summary.counties:,}（{summary.seconds:.1f} 秒）")


@click.command("sync-members")
@click.option("--full", "full_file", type=click.Path(dir_okay=False, path_type=Path),
              help="全件CSV（MAMIS APIの随時取得）。ファイルにない会員は削除されます。")
@click.option("--diff", "diff_file", type=click.Path(dir_okay=False, path_type=Path),
              help="差分CSV（日次・月次の差分取得）。operation 列（added/changed/deleted）が必要です。")
@click.option("--json", "as_json", is_flag=True, help="結果をJSONで出力します。")
@click.pass_obj
def sync_members(instance, full_file: Path | None, diff_file: Path | None, as_json: bool) -> None:
    """MAMIS APIの会員CSVを取り込みます（会員データを書き換える唯一の処理）。

    取り込みは全体で1つのトランザクションです。途中で失敗・中断しても以前のデータは
    そのまま残ります。不正な行は行番号と理由を表示し、その他の行は取り込みます。

    文字コードは UTF-8（BOM有無とも）と Shift_JIS（CP932）を自動判定します。
    列の定義は docs/records.md を参照してください。
    """
    if (full_file is None) == (diff_file is None):
        raise click.UsageError("--full FILE.csv と --diff FILE.csv のどちらか一方を指定してください。")
    mode, path = ("full", full_file) if full_file else ("diff", diff_file)
    if not path.is_file():
        raise click.ClickException(f"ファイルが見つかりません: {path}")
    try:
        summary = import_members(_records_db(instance), path, mode,
                                 progress_file=sys.stderr if sys.stderr.isatty() else None)
    except RecordsError as exc:
        raise click.ClickException(message_ja(exc)) from exc
    if as_json:
        click.echo(json.dumps(summary.to_json(), ensure_ascii=False))
        return
    label = "全件" if mode == "full" else "差分"
    click.echo(f"{label}取り込みが完了しました（文字コード: {summary.encoding}）。")
    click.echo(f"  追加 {summary.added:,} 件、変更 {summary.changed:,} 件、削除 {summary.deleted:,} 件、"
               f"変更なし {summary.unchanged:,} 件、取り込めなかった行 {len(summary.rejected):,} 件")
    for rej in summary.rejected:
        click.echo(f"  {rej.line}行目: {rej.reason}")
