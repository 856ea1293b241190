"""`helpdesk staff add|list|passwd|remove|signout` and `helpdesk demo-accounts`: the staff accounts of
the web chat. `passwd`, `remove` and `signout` end the account's sessions on the server, so a browser
still signed in (or a copy of its cookie) is signed out at its next request.

The work is in bot/accounts/staff.py; these commands translate arguments and turn its errors into
ClickException with the Japanese it carries.
"""
from __future__ import annotations

import json
from datetime import datetime

import click

from helpdesk.instance import Instance

# (login id, display name, level, association code): one county, its prefecture, another prefecture,
# so that a demo shows what each may see (千代田区 sees 13001; 東京都 sees every Tokyo county; 大阪府
# sees none of the Tokyo members).
DEMO_ACCOUNTS = (
    ("demo-chiyoda", "千代田区医師会 事務局（デモ）", "county", "13001"),
    ("demo-tokyo", "東京都医師会 事務局（デモ）", "prefecture", "13"),
    ("demo-osaka", "大阪府医師会 事務局（デモ）", "prefecture", "27"),
)


def _accounts(instance: Instance, kind=None):
    """The staff accounts of the instance, or `kind(store)` (the desk's agents: handlers/cli/agents.py)."""
    from bot import Store
    from bot.accounts.staff import StaffAccounts

    if not isinstance(instance, Instance):
        raise click.ClickException("インスタンスフォルダが指定されていません。`helpdesk --instance DIR …` で実行してください。")
    store = Store(instance.helpdesk_db)
    return kind(store) if kind else StaffAccounts(store, records_db=instance.records_db)


def timestamp() -> str:
    """Now in Japan time, as account rows record it."""
    return _clock().isoformat(timespec="seconds")


def _clock() -> datetime:
    from bot import JST

    return datetime.now(JST)


def run_accounts(instance: Instance, work, kind=None):
    """Run `work(accounts)` (staff accounts, or `kind`'s), turning an AccountError into its Japanese
    message; always close the store."""
    from bot.accounts.staff import AccountError

    accounts = _accounts(instance, kind)
    try:
        return work(accounts)
    except AccountError as e:
        raise click.ClickException(e.message_ja)
    finally:
        accounts.store.close()


def password_option(label: str):
    """--password, asked for twice without echo when omitted (so it stays out of the shell history);
    staff and desk agent commands alike."""
    return click.option("--password", prompt=label, hide_input=True, confirmation_prompt=f"{label}（確認）",
                        help=f"{label}（10文字以上）。省略すると入力を求めます（コマンド履歴に残らないよう、省略を推奨）")


@click.group("staff")
def staff():
    """Webチャットにログインする医師会事務局職員のアカウントを管理します。"""


@staff.command("add")
@click.argument("login_id")
@click.option("--name", "display_name", required=True, help="画面に表示する名前（例: 千代田区医師会 事務局 山田）")
@click.option("--level", type=click.Choice(["county", "prefecture"]), required=True,
              help="所属の区分: county（郡市区等医師会）または prefecture（都道府県医師会）")
@click.option("--code", "association_code", required=True,
              help="所属する医師会のコード（都道府県医師会は2桁の例: 13、郡市区等医師会は5桁の例: 13001）")
@password_option("パスワード")
@click.pass_obj
def add_command(instance: Instance, login_id, display_name, level, association_code, password):
    """職員アカウントを追加します。パスワードは argon2id でハッシュ化して保存します。"""
    account = run_accounts(instance, lambda accounts: accounts.add(login_id, display_name, level, association_code,
                                                           password, timestamp()))
    click.echo(f"追加しました: {account.login_id}（{account.display_name}、{account.association_name}）")


@staff.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON で出力します")
@click.pass_obj
def list_command(instance: Instance, as_json):
    """職員アカウントの一覧を表示します（パスワードは表示しません）。"""
    rows = run_accounts(instance, lambda accounts: accounts.all())
    if as_json:
        click.echo(json.dumps([{
            "login_id": a.login_id, "display_name": a.display_name, "level": a.level,
            "association_code": a.association_code, "association_name": a.association_name, "demo": a.demo,
            "created_at": a.created_at, "last_sign_in_at": a.last_sign_in_at,
        } for a in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("職員アカウントはまだありません。`helpdesk staff add` で追加してください。")
        return
    for a in rows:
        mark = "（デモ用）" if a.demo else ""
        last = a.last_sign_in_at or "未ログイン"
        click.echo(f"{a.login_id}\t{a.display_name}\t{a.association_name}（{a.association_code}）\t最終ログイン: {last}{mark}")


@staff.command("passwd")
@click.argument("login_id")
@password_option("新しいパスワード")
@click.pass_obj
def passwd_command(instance: Instance, login_id, password):
    """職員アカウントのパスワードを変更します。そのアカウントのログイン中のセッションはすべて終了します。"""
    account, ended = run_accounts(instance, lambda accounts: accounts.set_password(login_id, password, _clock()))
    click.echo(f"パスワードを変更しました: {account.login_id}（終了したセッション: {ended}）")


@staff.command("remove")
@click.argument("login_id")
@click.option("--yes", is_flag=True, help="確認せずに削除します")
@click.pass_obj
def remove_command(instance: Instance, login_id, yes):
    """職員アカウントを削除します。ログイン中のセッションは終了し、その職員の会話は誰も開けなくなります。"""
    if not yes:
        click.confirm(f"職員アカウント「{login_id}」を削除しますか？", abort=True)
    from bot.accounts.staff import normalize_login_id

    ended = run_accounts(instance, lambda accounts: accounts.remove(login_id, _clock()))
    click.echo(f"削除しました: {normalize_login_id(login_id)}（終了したセッション: {ended}）")


@staff.command("signout")
@click.argument("login_id")
@click.pass_obj
def signout_command(instance: Instance, login_id):
    """職員アカウントのログイン中のセッションをすべて終了します（Cookie を盗まれた疑いがあるときなど）。"""
    from bot.accounts.staff import normalize_login_id

    ended = run_accounts(instance, lambda accounts: accounts.end_sessions(login_id, _clock()))
    click.echo(f"ログアウトさせました: {normalize_login_id(login_id)}（終了したセッション: {ended}）")


@click.command("demo-accounts")
@click.pass_obj
def demo_accounts(instance: Instance):
    """デモ用の職員アカウントを作成し、ログインIDとパスワードを表示します（パスワードはインスタンスフォルダの
    demo-passwords.json（所有者のみ読み書き可）に保存し、再実行しても変わりません）。

    会員データがデモデータ（架空）のときだけ作成します。本番の会員データがあるインスタンスでは何もしません。
    """
    from bot.accounts.staff import AccountError, demo_passwords
    from records.errors import DatabaseMissing
    from records.lookup import Records

    try:
        with Records(instance.records_db, instance.audit_db) as records:
            label = records.dataset_label()
    except DatabaseMissing:
        raise click.ClickException("会員データがありません。先に `helpdesk demo-data` を実行してください。")
    if not label:
        raise click.ClickException("この会員データはデモデータではないため、デモ用アカウントは作成しません。")
    accounts = _accounts(instance)
    made = []
    try:
        # Stable across restarts of this instance, so the printed passwords and signed-in sessions stay valid.
        passwords = demo_passwords(instance.path / "demo-passwords.json", [a[0] for a in DEMO_ACCOUNTS])
        for login_id, name, level, code in DEMO_ACCOUNTS:
            password = passwords[login_id]
            try:
                account = accounts.put_demo(login_id, name, level, code, password, timestamp())
            except AccountError as e:
                raise click.ClickException(e.message_ja)
            made.append((account, password))
    finally:
        accounts.store.close()
    click.echo(f"デモ用の職員アカウント（{label}専用。本番では使わないでください）:")
    for account, password in made:
        click.echo(f"  デモ用  ログインID: {account.login_id}  パスワード: {password}  "
                   f"所属: {account.association_name}（{account.level_label}）")
    click.echo("ログイン: チャットの「職員ログイン」、または /login")
