"""The operator's commands: `helpdesk backup`, `restore`, `purge` and `person export|delete`.

They translate arguments, settings and errors; the work lives in storage/backup.py, bot/privacy/retention.py
and bot/privacy/person.py. Every command that touches a person's data writes one line to the access log,
naming the person by masked identifier only.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

JST = timezone(timedelta(hours=9))
MEMBER_NUMBER = re.compile(r"[0-9]{7}")
TELEGRAM_USER = re.compile(r"[0-9]{1,20}")

PURGE_LABELS = {
    "conversations": "会話", "messages": "メッセージ", "feedback": "評価", "unanswered": "答えられなかった質問",
    "tickets": "チケット", "ticket_events": "チケットの履歴", "channel_updates": "Telegram の受信記録",
    "outbox": "送信済みの通知・返信", "link_codes_deleted": "連携コード（削除）",
    "link_codes_anonymised": "連携コード（匿名化）", "access_log": "アクセスログ",
}


def _settings(instance):
    from helpdesk.settings import SettingError, load_settings

    try:
        return load_settings(instance.path)
    except SettingError as e:
        raise click.ClickException(str(e))


def _operator_log(instance, action: str, record: str | None) -> None:
    """One access-log line: what an operator did, about whom (masked), never what the data was."""
    from records.access import AccessLog

    class Operator:
        on_behalf_of = None

        @staticmethod
        def log_ref() -> str:
            return "operator(helpdesk cli)"

    log = AccessLog(instance.audit_db)
    try:
        log.write(Operator(), action, record, True)
    finally:
        log.close()


def _known_migrations() -> dict[str, list[str]]:
    from handlers.web.health import known_migrations

    return known_migrations()


# -- backup and restore -----------------------------------------------------------------------------


def _echo_manifest(dest: Path, manifest: dict) -> None:
    click.echo(f"バックアップを作成しました: {dest}")
    for name, facts in manifest["databases"].items():
        click.echo(f"  {name}: {facts['bytes']:,} バイト、整合性 {facts['integrity']}、"
                   f"マイグレーション {len(facts['migrations'] or [])} 件")


def _next_daily(at: str, now: datetime) -> datetime:
    hour, minute = (int(x) for x in at.split(":"))
    moment = now.astimezone(JST).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return moment if moment > now else moment + timedelta(days=1)


@click.command("backup")
@click.argument("dest", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--rotate", is_flag=True,
              help="DEST（省略時は設定 BACKUP_DIR）の中に日時つきのフォルダを作り、古いものを BACKUP_KEEP 個まで残して削除します")
@click.option("--keep", type=click.IntRange(1, 3650), help="--rotate で残す数（省略時は設定 BACKUP_KEEP）")
@click.option("--daily", is_flag=True,
              help="終了せず、毎日 BACKUP_DAILY_AT（日本時間）に --rotate のバックアップを取り続けます（systemd タイマーや cron が使えないとき）")
@click.option("--json", "as_json", is_flag=True, help="manifest を JSON で出力します")
@click.pass_obj
def backup_command(instance, dest, rotate, keep, daily, as_json):
    """稼働中のまま、すべてのデータベースの一貫したコピーを DEST に作ります（整合性検査と manifest.json つき）。"""
    from storage.backup import BackupError, backup, backup_into

    settings = _settings(instance)
    keep = keep or int(settings["BACKUP_KEEP"])
    folder = dest or (Path(settings["BACKUP_DIR"]) if settings["BACKUP_DIR"] else None)
    if folder is None:
        raise click.ClickException("保存先がありません。DEST を指定するか、設定 BACKUP_DIR を設定してください。")
    try:
        while daily:
            wake = _next_daily(settings["BACKUP_DAILY_AT"], datetime.now(timezone.utc))
            click.echo(f"次のバックアップ: {wake.isoformat(timespec='minutes')}")
            time.sleep(max(0.0, (wake - datetime.now(timezone.utc)).total_seconds()))
            made, manifest, removed = backup_into(instance.path, folder, keep)
            _echo_manifest(made, manifest)
            for old in removed:
                click.echo(f"  古いバックアップを削除しました: {old}")
        if rotate:
            made, manifest, removed = backup_into(instance.path, folder, keep)
        else:
            made, manifest, removed = folder, backup(instance.path, folder), []
    except BackupError as e:
        raise click.ClickException(str(e))
    if as_json:
        click.echo(json.dumps({"path": str(made), **manifest}, ensure_ascii=False, indent=2))
        return
    _echo_manifest(made, manifest)
    for old in removed:
        click.echo(f"  古いバックアップを削除しました: {old}")


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="確認せずに復元します")
@click.pass_obj
def restore_command(instance, source, yes):
    """helpdesk backup で作ったバックアップを検査してから、インスタンスフォルダに戻します。

    戻す前の状態は <instance>/backups/before-restore-<日時> に残します。
    """
    from storage.backup import BackupError, restore, verify

    known = _known_migrations()
    try:
        manifest = verify(source, known)
    except BackupError as e:
        raise click.ClickException(str(e))
    names = "、".join(manifest["databases"])
    click.echo(f"検査に通りました: {source}（{manifest.get('finished_at')} 作成、{names}）")
    if not yes:
        click.confirm(f"{instance.path} の現在のデータをこのバックアップで置き換えますか", abort=True)
    try:
        _manifest, before = restore(instance.path, source, known)
    except BackupError as e:
        raise click.ClickException(str(e))
    click.echo("復元しました。" + (f"復元前のデータは {before} にあります。" if before else ""))


# -- retention -------------------------------------------------------------------------------------------


@click.command("purge")
@click.option("--apply", is_flag=True, help="実際に削除します（省略時は件数を数えるだけで何も変えません）")
@click.option("--json", "as_json", is_flag=True, help="件数を JSON で出力します")
@click.pass_obj
def purge_command(instance, apply, as_json):
    """保存期間（設定 RETENTION_*_DAYS）を過ぎた会話・チケット・質問・アクセスログ・連携コードを削除します。

    既定は試行（件数の表示のみ）です。削除するには --apply を付けてください。
    """
    from bot.privacy.retention import Ages, purge

    settings = _settings(instance)
    now = datetime.fromisoformat(settings["NOW"]) if settings["NOW"] else datetime.now(timezone.utc)
    counts = purge(instance.helpdesk_db, instance.audit_db, Ages.from_settings(settings), now, apply=apply)
    if apply:
        _operator_log(instance, "retention_purge", None)
    if as_json:
        click.echo(json.dumps({"applied": apply, "counts": counts}, ensure_ascii=False, indent=2))
        return
    click.echo("削除しました:" if apply else "試行（何も削除していません。削除するには --apply）:")
    for key, label in PURGE_LABELS.items():
        click.echo(f"  {label}: {counts.get(key, 0):,} 件")


# -- one person's data -------------------------------------------------------------------------------------


def _person(member: str | None, telegram: str | None) -> dict:
    if bool(member) == bool(telegram):
        raise click.UsageError("--member（会員番号7桁）か --telegram（Telegram のユーザーID）のどちらか一方を指定してください。")
    if member and not MEMBER_NUMBER.fullmatch(member):
        raise click.BadParameter("会員番号は7桁の数字です。", param_hint="--member")
    if telegram and not TELEGRAM_USER.fullmatch(telegram):
        raise click.BadParameter("Telegram のユーザーIDは数字です。", param_hint="--telegram")
    return {"member_number": member, "telegram_user": telegram}


def _masked(person: dict) -> str:
    from records.access import mask_identifier, mask_member_number

    if person["member_number"]:
        return f"member:{mask_member_number(person['member_number'])}"
    return f"telegram:{mask_identifier(person['telegram_user'])}"


_person_options = [
    click.option("--member", help="会員番号（7桁）"),
    click.option("--telegram", help="Telegram のユーザーID（数字）"),
]


def person_options(f):
    for option in reversed(_person_options):
        f = option(f)
    return f


@click.group("person")
def person():
    """ひとりの方のデータの開示（export）と削除（delete）。個人情報保護法にもとづく請求に使います。"""


@person.command("export")
@person_options
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="書き出すファイル（省略時は標準出力）")
@click.pass_obj
def person_export(instance, member, telegram, output):
    """会員番号または Telegram ユーザーに結びつくデータ（連携、会話、チケットなど）を JSON で書き出します。"""
    from bot.privacy.person import export, to_json

    who = _person(member, telegram)
    text = to_json(export(instance.helpdesk_db, **who))
    _operator_log(instance, "person_export", _masked(who))
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"書き出しました: {output}", err=True)
    else:
        click.echo(text)


@person.command("delete")
@person_options
@click.option("--yes", is_flag=True, help="確認せずに削除します")
@click.pass_obj
def person_delete(instance, member, telegram, yes):
    """会員番号または Telegram ユーザーに結びつくデータをすべて削除します（アクセスログには削除した事実だけが残ります）。"""
    from bot.privacy.person import delete

    who = _person(member, telegram)
    counts = delete(instance.helpdesk_db, apply=False, **who)
    total = sum(counts.values())
    click.echo(f"削除の対象: {total} 行（" + "、".join(f"{k} {v}" for k, v in counts.items() if v) + "）")
    if total == 0:
        click.echo("このかたのデータはありません。")
        return
    if not yes:
        click.confirm("削除しますか（元に戻せません）", abort=True)
    delete(instance.helpdesk_db, apply=True, **who)
    _operator_log(instance, "person_delete", _masked(who))
    click.echo("削除しました。")


COMMANDS = (backup_command, restore_command, purge_command, person)
