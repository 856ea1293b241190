"""`helpdesk demo-data` and `helpdesk sync-*`: the jobs that write the records database.

They read the database path from the click context object, a `helpdesk.instance.Instance`;
handlers/cli/main.py registers them on the `helpdesk` group. Each `sync-*` command reads its column map
from the settings and calls the notification step itself (bot/messaging/notices.py, built by
helpdesk/services.py's `build_notices`), so a sync
notifies subscribed doctors however the command is reached. Domain errors become ClickException with
the Japanese sentence from records.errors.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Mapping

import click

from helpdesk.services import build_notices
from helpdesk.settings import load_settings
from records.demo import DEFAULT_SEED, generate_demo
from records.errors import RecordsError, message_ja
from records.importer import ImportKind, run_import
from records.kinds import KINDS, export_files
from records.schema import DEMO_LABEL


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
@click.option("--files", "files", type=click.Path(file_okay=False, path_type=Path),
              help="作成したデータを取り込み用CSV（members.csv、institutions.csv、applications.csv、"
                   "fd_reports.csv）としてこのフォルダにも書き出します（helpdesk sync-* で取り込めます）。")
@click.pass_obj
def demo_data(instance, members: int, seed: int, force: bool, files: Path | None) -> None:
    """架空の会員・医療機関・手続きデータ（デモデータ）を作成します。

    作成したデータベースには「デモデータ（架空）」の印が付き、画面にも表示されます。
    --files を付けると同じデータを取り込み用CSVにも書き出すので、実データと同じ
    sync-members → sync-institutions → sync-applications → sync-reports の順で取り込めます。
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
    if files:
        counts = export_files(path, files)
        click.echo(f"取り込み用CSVを書き出しました: {files}（" + "、".join(
            f"{KINDS[name].file_name} {n:,} 行" for name, n in counts.items()) + "）")


_SYNC_HELP = {
    "members": ("MAMIS APIの会員CSVを取り込みます（会員データを書き換える唯一の処理）。",
                "ファイルにない会員は削除されます。"),
    "institutions": ("医療機関マスタ（月次の納品ファイルと手入力の医療機関）を取り込みます。",
                     "ファイルにない医療機関は、そのかかりつけ医機能報告とともに削除されます。"),
    "applications": ("入会届・異動届の状況を取り込みます。段階の変化は通知を希望した会員に届きます。",
                     "ファイルにない申請は削除されます。"),
    "reports": ("かかりつけ医機能報告の状況を取り込みます（医療機関マスタを先に取り込んでください）。",
                "ファイルにない報告は削除されます。"),
}


def column_map(settings: Mapping, kind: str) -> Mapping[str, str] | None:
    """The setting IMPORT_COLUMNS for this kind."""
    return settings["IMPORT_COLUMNS"].get(kind)


def sync_command(kind: ImportKind) -> click.Command:
    """`helpdesk sync-<kind>`: import one kind's file, then run the notification step.

    The notification step (`Notices.watch()`) reads, before the import, what subscribed doctors
    would be told about; its `queue()` is called after a successful import and returns how many
    notices it queued in the outbox (nothing changed, nothing queued).
    """
    summary_line, full_help = _SYNC_HELP[kind.name]

    @click.command(f"sync-{kind.name}", help=f"""{summary_line}

    取り込みは全体で1つのトランザクションです。途中で失敗・中断しても以前のデータは
    そのまま残ります。不正な行は行番号と理由を表示し、その他の行は取り込みます。

    文字コードは UTF-8（BOM有無とも）と Shift_JIS（CP932）を自動判定します。
    列の定義は docs/records.md、列名の読み替えは設定 IMPORT_COLUMNS を参照してください。

    取り込みのあと、会員状態や申請の状況が変わった会員のうち、Telegram で通知を希望して
    連携している会員へのお知らせを送信待ちにします（同じファイルをもう一度取り込んでも重ねて送りません）。
    """)
    @click.option("--full", "full_file", type=click.Path(dir_okay=False, path_type=Path),
                  help=f"全件CSV。{full_help}")
    @click.option("--diff", "diff_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="差分CSV。operation 列（added/changed/deleted）が必要です。")
    @click.option("--json", "as_json", is_flag=True, help="結果をJSONで出力します。")
    @click.pass_obj
    def command(instance, full_file: Path | None, diff_file: Path | None, as_json: bool) -> None:
        if (full_file is None) == (diff_file is None):
            raise click.UsageError("--full FILE.csv と --diff FILE.csv のどちらか一方を指定してください。")
        mode, path = ("full", full_file) if full_file else ("diff", diff_file)
        if not path.is_file():
            raise click.ClickException(f"ファイルが見つかりません: {path}")
        db = _records_db(instance)
        try:
            settings = load_settings(instance.path)  # SettingError (a ValueError) when a setting is wrong
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        renames = column_map(settings, kind.name)
        notices = build_notices(instance.path, settings).watch()  # the notification step: before, then after
        try:
            summary = run_import(db, path, mode, kind, column_map=renames,
                                 progress_file=sys.stderr if sys.stderr.isatty() else None)
            queued = notices.queue()
        except RecordsError as exc:
            raise click.ClickException(message_ja(exc)) from exc
        finally:
            notices.close()
        if queued:
            click.echo(f"Telegram の通知 {queued} 件を送信待ちにしました。", err=True)
        if as_json:
            click.echo(json.dumps(summary.to_json(), ensure_ascii=False))
            return
        label = "全件" if mode == "full" else "差分"
        click.echo(f"{label}取り込みが完了しました（文字コード: {summary.encoding}）。")
        click.echo(f"  追加 {summary.added:,} 件、変更 {summary.changed:,} 件、削除 {summary.deleted:,} 件、"
                   f"変更なし {summary.unchanged:,} 件、取り込めなかった行 {len(summary.rejected):,} 件")
        for rej in summary.rejected:
            click.echo(f"  {rej.line}行目: {rej.reason}")

    return command


#: One `sync-*` command per kind, in the order a real installation loads them.
SYNC_COMMANDS = [sync_command(kind) for kind in KINDS.values()]
sync_members = next(command for command in SYNC_COMMANDS if command.name == "sync-members")
