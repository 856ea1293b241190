"""`helpdesk agent add|list|remove|passwd|demo`: the operations desk's agent accounts.

The work is in bot/accounts/agents.py; these commands translate arguments and turn its errors into
ClickException with the Japanese it carries. `agent demo` (run by `make run`) creates the demo agent
and prints its password, kept stable per instance like the demo staff's (`demo-accounts`).
"""
from __future__ import annotations

import json

import click

from handlers.cli.staff import password_option, run_accounts, timestamp


def _run(instance, work):
    """Run `work(agents)` over the instance's help desk database; AccountError → ClickException."""
    from bot.accounts.agents import AgentAccounts

    return run_accounts(instance, work, AgentAccounts)


@click.group("agent")
def agent():
    """運営事務局コンソール（/desk）にログインする担当者のアカウントを管理します。"""


@agent.command("add")
@click.argument("login_id")
@click.option("--name", "display_name", required=True,
              help="利用者にも表示される名前（例: 運営事務局 山田）。ログインIDは利用者には見えません")
@password_option("パスワード")
@click.pass_obj
def add_command(instance, login_id, display_name, password):
    """担当者アカウントを追加します。パスワードは argon2id でハッシュ化して保存します。"""
    account = _run(instance, lambda agents: agents.add_agent(login_id, display_name, password, timestamp()))
    click.echo(f"追加しました: {account.login_id}（{account.display_name}）")


@agent.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON で出力します")
@click.pass_obj
def list_command(instance, as_json):
    """担当者アカウントの一覧を表示します（パスワードは表示しません）。"""
    rows = _run(instance, lambda agents: agents.all())
    if as_json:
        click.echo(json.dumps([{"login_id": a.login_id, "display_name": a.display_name, "demo": a.demo,
                                "created_at": a.created_at, "last_sign_in_at": a.last_sign_in_at} for a in rows],
                              ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("担当者アカウントはまだありません。`helpdesk agent add` で追加してください。")
    for a in rows:
        click.echo(f"{a.login_id}\t{a.display_name}\t最終ログイン: {a.last_sign_in_at or '未ログイン'}"
                   + ("（デモ用）" if a.demo else ""))


@agent.command("remove")
@click.argument("login_id")
@click.pass_obj
def remove_command(instance, login_id):
    """担当者アカウントを削除します（ログイン中の画面も次の操作でログアウトします）。対応記録は残ります。"""
    if not _run(instance, lambda agents: agents.remove(login_id)):
        raise click.ClickException(f"ログインID「{login_id}」の担当者は登録されていません。`helpdesk agent list` で確認してください。")
    click.echo(f"削除しました: {login_id}")


@agent.command("passwd")
@click.argument("login_id")
@password_option("新しいパスワード")
@click.pass_obj
def passwd_command(instance, login_id, password):
    """担当者のパスワードを変更します。古いパスワードでのログインは次の操作で終了します。"""
    account = _run(instance, lambda agents: agents.set_password(login_id, password))
    click.echo(f"パスワードを変更しました: {account.login_id}")


@agent.command("demo")
@click.pass_obj
def demo_command(instance):
    """デモ用の担当者アカウントを作成し、ログインIDとパスワードを表示します（パスワードはデモ用の職員と同じく
    インスタンスフォルダの demo-passwords.json に保存し、再実行しても変わりません）。"""
    from bot.accounts.staff import demo_passwords
    from bot.accounts.agents import DEMO_AGENT

    password = demo_passwords(instance.path / "demo-passwords.json", [DEMO_AGENT[0]])[DEMO_AGENT[0]]
    account = _run(instance, lambda agents: agents.put_demo_agent(password, timestamp()))
    click.echo("デモ用の運営事務局担当者（本番では使わないでください）:")
    click.echo(f"  デモ用  ログインID: {account.login_id}  パスワード: {password}  表示名: {account.display_name}")
    click.echo("ログイン: /desk/login（運営事務局コンソール）")
