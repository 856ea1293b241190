"""Agent accounts of the operations desk (MAMIS運営事務局): who may sign in to the desk console.

Agents are not staff with a level: they belong to no association and see no records of their own
(role `desk`; a record lookup from the console runs on behalf of a ticket's asker). They are rows of
the one `accounts` table with role `desk` (bot/accounts/staff.py says why one table), so hashing, the
constant-time refusal of unknown ids, rehashing, demo accounts and sessions are the staff's; only what
a valid agent is, and what removing one means, are said here.
"""
from __future__ import annotations

from datetime import datetime, timezone

from bot.accounts.staff import LOGIN_ID, Account, Accounts, InvalidAccount, normalize_login_id

# Agent ids start with a letter, so that an agent's login id can never be mistaken for a staff id or
# a messaging identity ("telegram:…") in an audit log.
DEMO_AGENT = ("demo-desk", "運営事務局 担当（デモ）")


class AgentAccounts(Accounts):
    """Adds, lists, removes and authenticates desk agents."""

    ROLE = "desk"
    # An agent who answered tickets stays in their audit log by login id; removal only ends sign-in
    # (their sessions go with the row: account_sessions references it ON DELETE CASCADE).
    DELETE_SQL = "DELETE FROM accounts WHERE role = :role AND login_id = :login_id"
    NAMES_SQL = "SELECT login_id, display_name FROM accounts WHERE role = :role ORDER BY display_name"

    def validate(self, login_id: str, display_name: str, password: str = "") -> dict:
        """Check the fields of an agent and return the row to insert; raises InvalidAccount."""
        login = normalize_login_id(login_id)
        if not LOGIN_ID.fullmatch(login) or not login[0].isalpha():
            raise InvalidAccount("ログインIDは英小文字で始まる、英小文字・数字・記号（. _ @ -）の3〜64文字にしてください。")
        name = " ".join((display_name or "").split())
        if not name or len(name) > 60:
            raise InvalidAccount("表示名を60文字以内で入力してください。利用者には表示名だけが見えます。")
        return {"login_id": login, "display_name": name, "level": None, "association_code": None,
                "password_hash": self._hash_new(password)}

    def add_agent(self, login_id: str, display_name: str, password: str, now: str) -> Account:
        return self._add(self.validate(login_id, display_name, password), now)

    def put_demo_agent(self, password: str, now: str) -> Account:
        login_id, name = DEMO_AGENT
        return self._put_demo(self.validate(login_id, name, password), password, now)

    def remove(self, login_id: str) -> bool:
        with self.store.transaction() as conn:
            return conn.execute(self.DELETE_SQL, {"role": self.ROLE,
                                                  "login_id": normalize_login_id(login_id)}).rowcount > 0

    def set_password(self, login_id: str, password: str) -> Account:
        """Replace the password and end every session signed in under the old one."""
        account = self.get(login_id)
        if account is None:
            raise InvalidAccount(f"ログインID「{normalize_login_id(login_id)}」の担当者は登録されていません。")
        new_hash = self._hash_new(password)
        with self.store.transaction() as conn:
            conn.execute(self.SET_PASSWORD_SQL, {"password_hash": new_hash, "id": account.id})
            self._end_all(conn, account.id, datetime.now(timezone.utc))
        return self.get(login_id)

    def names(self) -> dict[str, str]:
        """login id → display name, for the queue's assignee filter and the audit log."""
        return {r["login_id"]: r["display_name"] for r in self.store.conn.execute(self.NAMES_SQL, {"role": self.ROLE})}
