"""Agent accounts of the operations desk (MAMIS運営事務局): who may sign in to the desk console.

Agents are not staff with a level: they belong to no association and see no records of their own
(role `desk`; a record lookup from the console runs on behalf of a ticket's asker). They live in the
table `agents` (migration 0010_tickets). Hashing, the constant-time refusal of unknown ids, rehashing
and demo accounts are exactly those of the staff accounts, so `AgentAccounts` reuses `StaffAccounts`
and changes only the table, the columns and what a valid account is.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from .accounts import LOGIN_ID, MIN_PASSWORD, InvalidAccount, StaffAccounts, normalize_login_id

# Agent ids start with a letter, so that an agent's login id can never be mistaken for a staff id or
# a messaging identity ("telegram:…") in an audit log.
DEMO_AGENT = ("demo-desk", "運営事務局 担当（デモ）")


@dataclass(frozen=True)
class AgentAccount:
    id: int
    login_id: str
    display_name: str
    demo: bool
    created_at: str
    last_sign_in_at: str | None
    password_hash: str
    role: str = "desk"
    # An agent belongs to no association; StaffAccounts' shared code compares these.
    level: None = None
    association_code: None = None

    def __repr__(self) -> str:  # keep the hash out of logs and tracebacks
        return f"AgentAccount({self.login_id!r})"


class AgentAccounts(StaffAccounts):
    """Adds, lists, removes and authenticates desk agents; everything else is StaffAccounts'."""

    COLUMNS = "id, login_id, display_name, demo, created_at, last_sign_in_at, password_hash"
    BY_LOGIN_SQL = f"SELECT {COLUMNS} FROM agents WHERE login_id = :login_id"
    ALL_SQL = f"SELECT {COLUMNS} FROM agents ORDER BY login_id"
    INSERT_SQL = """
        INSERT INTO agents (login_id, display_name, password_hash, demo, created_at)
        VALUES (:login_id, :display_name, :password_hash, :demo, :created_at)
    """
    SET_PASSWORD_SQL = "UPDATE agents SET password_hash = :password_hash WHERE id = :id"
    SIGNED_IN_SQL = "UPDATE agents SET last_sign_in_at = :at, password_hash = :password_hash WHERE id = :id"
    UPSERT_DEMO_SQL = """
        INSERT INTO agents (login_id, display_name, password_hash, demo, created_at)
        VALUES (:login_id, :display_name, :password_hash, 1, :created_at)
        ON CONFLICT (login_id) DO UPDATE SET
            display_name = excluded.display_name, password_hash = excluded.password_hash
        WHERE agents.demo = 1
    """
    # An agent who answered tickets stays in their audit log by login id; removal only ends sign-in.
    DELETE_SQL = "DELETE FROM agents WHERE login_id = :login_id"
    NAMES_SQL = "SELECT login_id, display_name FROM agents ORDER BY display_name"
    SESSION_TABLES = {"sessions": "agent_sessions", "accounts": "agents", "owner": "agent_id"}

    def _account(self, row) -> AgentAccount:
        return AgentAccount(row["id"], row["login_id"], row["display_name"], bool(row["demo"]),
                            row["created_at"], row["last_sign_in_at"], row["password_hash"])

    def validate(self, login_id: str, display_name: str, level: str | None = None,
                 association_code: str | None = None, password: str = "") -> dict:
        """Check the fields of an agent and return the row to insert; raises InvalidAccount."""
        login = normalize_login_id(login_id)
        if not LOGIN_ID.fullmatch(login) or not login[0].isalpha():
            raise InvalidAccount("ログインIDは英小文字で始まる、英小文字・数字・記号（. _ @ -）の3〜64文字にしてください。")
        name = " ".join((display_name or "").split())
        if not name or len(name) > 60:
            raise InvalidAccount("表示名を60文字以内で入力してください。利用者には表示名だけが見えます。")
        if len(password or "") < MIN_PASSWORD:
            raise InvalidAccount(f"パスワードは{MIN_PASSWORD}文字以上にしてください。")
        return {"login_id": login, "display_name": name, "password_hash": self.hasher.hash(password)}

    def add_agent(self, login_id: str, display_name: str, password: str, now: str) -> AgentAccount:
        return self.add(login_id, display_name, None, None, password, now)

    def put_demo_agent(self, password: str, now: str) -> AgentAccount:
        login_id, name = DEMO_AGENT
        return self.put_demo(login_id, name, None, None, password, now)

    def remove(self, login_id: str) -> bool:
        with self.store.transaction() as conn:
            return conn.execute(self.DELETE_SQL, {"login_id": normalize_login_id(login_id)}).rowcount > 0

    def set_password(self, login_id: str, password: str) -> AgentAccount:
        """Replace the password and end every session signed in under the old one."""
        account = self.get(login_id)
        if account is None:
            raise InvalidAccount(f"ログインID「{normalize_login_id(login_id)}」の担当者は登録されていません。")
        if len(password or "") < MIN_PASSWORD:
            raise InvalidAccount(f"パスワードは{MIN_PASSWORD}文字以上にしてください。")
        with self.store.transaction() as conn:
            conn.execute(self.SET_PASSWORD_SQL, {"password_hash": self.hasher.hash(password), "id": account.id})
            self._end_all(conn, account.id, datetime.now(timezone.utc))
        return self.get(login_id)

    def names(self) -> dict[str, str]:
        """login id → display name, for the queue's assignee filter and the audit log."""
        return {r["login_id"]: r["display_name"] for r in self.store.conn.execute(self.NAMES_SQL)}
