"""Accounts that sign in: the web chat's staff and the operations desk's agents, in one table.

Both kinds live in the help desk database's `accounts` table (migration 0014_accounts), told apart by
`role`: `staff` (secretariat staff of an association: `level` and `association_code` set) or `desk`
(an agent of the MAMIS運営事務局: no association, both NULL; a CHECK keeps each role to its columns).
One table, not two composed ones, because the two are the same thing with one optional part: the same
columns otherwise, the same hashing, demo accounts, sign-in and server-side sessions (one
`account_sessions` table). Every query names its role, so an agent's token never opens the chat and a
staff member's never opens the desk, and a staff member and an agent may share a login id as before.
`StaffAccounts` and `AgentAccounts` (bot/accounts/agents.py) differ only in what a valid account is and in
what removing one means; the SQL is written once, here.

Passwords are hashed with argon2id through argon2-cffi's `PasswordHasher`; the hash string carries its
own parameters, so a hash made under older parameters still verifies and is replaced on the next
successful sign-in. A failed sign-in never says whether the login id exists: an unknown id is verified
against a dummy hash, so it costs the same time as a wrong password, and both raise `SignInFailed`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.errors import HelpdeskError
from bot.store.database import Store, hash_token

LEVEL_JA = {"county": "郡市区等医師会", "prefecture": "都道府県医師会"}
LOGIN_ID = re.compile(r"[a-z0-9][a-z0-9._@-]{2,63}")
MIN_PASSWORD = 10
# No 0/O, 1/l/I: demo passwords are read off a terminal and typed in by hand.
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class AccountError(HelpdeskError):
    """Base of the account errors; each carries the Japanese the CLI shows."""

    message_ja = "アカウントを処理できませんでした。"


class SignInFailed(AccountError):
    """Wrong password or unknown login id: deliberately one error, one message."""

    message_ja = "ログインIDまたはパスワードが正しくありません。"


class InvalidAccount(AccountError):
    def __init__(self, message_ja: str):
        super().__init__(message_ja)
        self.message_ja = message_ja


class AccountExists(AccountError):
    def __init__(self, login_id: str):
        super().__init__(login_id)
        self.message_ja = f"ログインID「{login_id}」は既に登録されています。"


class UnknownAccount(AccountError):
    def __init__(self, login_id: str):
        super().__init__(login_id)
        self.message_ja = f"ログインID「{login_id}」の職員アカウントはありません。`helpdesk staff list` で確認してください。"


@dataclass(frozen=True)
class Account:
    """A row of `accounts`: a staff member (level and association set) or a desk agent (both None)."""

    id: int
    login_id: str
    display_name: str
    level: str | None
    association_code: str | None
    association_name: str | None
    demo: bool
    created_at: str
    last_sign_in_at: str | None
    password_hash: str
    role: str  # "staff" or "desk" (bot/accounts/agents.py)

    @property
    def level_label(self) -> str | None:
        return LEVEL_JA.get(self.level)

    def __repr__(self) -> str:  # keep the hash out of logs and tracebacks
        if self.role == "desk":
            return f"AgentAccount({self.login_id!r})"
        return f"StaffAccount({self.login_id!r}, {self.level}:{self.association_code})"


def normalize_login_id(login_id: str) -> str:
    """NFKC and lower case, so 「ＤＥＭＯ-county」 and "demo-county" are one account."""
    return unicodedata.normalize("NFKC", login_id or "").strip().lower()


def generate_password(length: int = 14) -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def demo_passwords(path: Path, login_ids) -> dict[str, str]:
    """The demo accounts' passwords, kept in a file of the instance folder readable by its owner only.

    `make run` sets the demo accounts up at every start; reading the same passwords back keeps them
    (and everyone signed in with them) valid across restarts of one instance. A login id without a
    password yet gets a new one. Demo accounts only: real accounts never have a password on disk.
    """
    path = Path(path)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        stored = {}
    if not isinstance(stored, dict):
        stored = {}
    passwords = {i: stored[i] if isinstance(stored.get(i), str) and len(stored[i]) >= MIN_PASSWORD
                 else generate_password() for i in login_ids}
    changed = passwords != {i: stored.get(i) for i in login_ids}
    if changed or path.stat().st_mode & 0o077:  # (a file just read exists; loose modes are tightened)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({**stored, **passwords}, f, ensure_ascii=False, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    return passwords


def association_name(level: str, code: str, records_db: Path | None = None) -> str | None:
    """The name of a prefectural or county association, or None if there is no such association.

    The 47 prefectures and the demo's counties are reference data in records/associations.py; a
    county imported from the member CSV is looked up in the records database when one is given.
    """
    from records.associations import PREFECTURES, county_associations

    if level == "prefecture":
        return next((f"{name}医師会" for c, name, _p, _cities in PREFECTURES if c == code), None)
    if level != "county":
        return None
    found = next((name for c, name, _p in county_associations() if c == code), None)
    if found or records_db is None or not Path(records_db).exists():
        return found
    from records.lookup import open_readonly

    conn = open_readonly(records_db)
    try:
        row = conn.execute(ASSOCIATION_SQL, {"code": code}).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


ASSOCIATION_SQL = "SELECT name FROM associations WHERE code = :code AND level = 'county'"


class Accounts:
    """The accounts of one role (`ROLE`) in the help desk database of `store`: adding, listing, signing
    in and sessions. What a valid account is, and what removing one means, is the role's own
    (`StaffAccounts` below, `AgentAccounts` in bot/accounts/agents.py)."""

    ROLE = ""

    def __init__(self, store: Store, hasher: PasswordHasher | None = None, *, records_db: Path | None = None):
        self.store = store
        self.hasher = hasher or PasswordHasher()
        self.records_db = records_db
        self._dummy_hash: str | None = None

    COLUMNS = ("id, role, login_id, display_name, level, association_code, demo, created_at, last_sign_in_at, "
               "password_hash")
    BY_LOGIN_SQL = f"SELECT {COLUMNS} FROM accounts WHERE role = :role AND login_id = :login_id"
    ALL_SQL = f"SELECT {COLUMNS} FROM accounts WHERE role = :role ORDER BY login_id"
    INSERT_SQL = """
        INSERT INTO accounts (role, login_id, display_name, level, association_code, password_hash, demo, created_at)
        VALUES (:role, :login_id, :display_name, :level, :association_code, :password_hash, :demo, :created_at)
    """
    SET_PASSWORD_SQL = "UPDATE accounts SET password_hash = :password_hash WHERE id = :id"
    SIGNED_IN_SQL = "UPDATE accounts SET last_sign_in_at = :at, password_hash = :password_hash WHERE id = :id"
    UPSERT_DEMO_SQL = """
        INSERT INTO accounts (role, login_id, display_name, level, association_code, password_hash, demo, created_at)
        VALUES (:role, :login_id, :display_name, :level, :association_code, :password_hash, 1, :created_at)
        ON CONFLICT (role, login_id) DO UPDATE SET
            display_name = excluded.display_name, level = excluded.level,
            association_code = excluded.association_code, password_hash = excluded.password_hash
        WHERE accounts.demo = 1
    """

    def _account(self, row) -> Account:
        name = association_name(row["level"], row["association_code"], self.records_db) if row["level"] else None
        return Account(row["id"], row["login_id"], row["display_name"], row["level"], row["association_code"],
                       name or row["association_code"], bool(row["demo"]), row["created_at"],
                       row["last_sign_in_at"], row["password_hash"], row["role"])

    def get(self, login_id: str) -> Account | None:
        row = self.store.conn.execute(self.BY_LOGIN_SQL, {"role": self.ROLE,
                                                          "login_id": normalize_login_id(login_id)}).fetchone()
        return self._account(row) if row else None

    def all(self) -> list[Account]:
        return [self._account(r) for r in self.store.conn.execute(self.ALL_SQL, {"role": self.ROLE})]

    def _hash_new(self, password: str) -> str:
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            raise InvalidAccount(f"パスワードは{MIN_PASSWORD}文字以上にしてください。")
        return self.hasher.hash(password)

    def _add(self, row: dict, now: str) -> Account:
        """Insert a checked row (the role's `validate`); AccountExists when its login id is taken."""
        if self.get(row["login_id"]):
            raise AccountExists(row["login_id"])
        with self.store.transaction() as conn:
            conn.execute(self.INSERT_SQL, {**row, "role": self.ROLE, "demo": 0, "created_at": now})
        return self.get(row["login_id"])

    def _put_demo(self, row: dict, password: str, now: str) -> Account:
        """Create a demo account, or reset its password; a real account of that id is left alone.

        An unchanged demo account with this very password is left as it is: a new hash of the same
        password would end the sessions signed in with it (their fingerprint is the hash's).
        """
        same = self.get(row["login_id"])
        if (same is not None and same.demo and (same.display_name, same.level, same.association_code)
                == (row["display_name"], row["level"], row["association_code"])
                and self._verifies(same.password_hash, password)):
            return same
        with self.store.transaction() as conn:
            changed = conn.execute(self.UPSERT_DEMO_SQL, {**row, "role": self.ROLE, "created_at": now}).rowcount
        if not changed:
            raise AccountExists(row["login_id"])
        return self.get(row["login_id"])

    def _verifies(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def authenticate(self, login_id: str, password: str, now: str) -> Account:
        """The account for these credentials, or SignInFailed; rehashes when the parameters changed."""
        account = self.get(login_id) if LOGIN_ID.fullmatch(normalize_login_id(login_id)) else None
        if account is None:
            self._burn(password)
            raise SignInFailed()
        try:
            self.hasher.verify(account.password_hash, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise SignInFailed() from None
        new_hash = account.password_hash
        if self.hasher.check_needs_rehash(account.password_hash):
            new_hash = self.hasher.hash(password)
        with self.store.transaction() as conn:
            conn.execute(self.SIGNED_IN_SQL, {"at": now, "password_hash": new_hash, "id": account.id})
        return self.get(account.login_id)

    # -- sessions ------------------------------------------------------------------------------------
    #
    # A signed-in browser holds a random token in its (signed) session cookie; the server keeps only
    # the token's hash and the session's state. A cookie is therefore good only while its row says
    # so: signing out, `staff signout|passwd|remove` (`agent passwd|remove`), idleness beyond the
    # session length or the end of its longest life (however busy) end it, and a copy of the cookie
    # made before that is worthless afterwards. A token is looked up under its role only.

    SESSION_TOUCH_EVERY = timedelta(minutes=1)  # how stale last_seen_at may get before it is rewritten
    START_SESSION_SQL = """
        INSERT INTO account_sessions (token_hash, account_id, created_at, last_seen_at)
        VALUES (:token_hash, :account_id, :now, :now)
    """
    PRUNE_SESSIONS_SQL = """
        DELETE FROM account_sessions
        WHERE account_id = :account_id AND (ended_at IS NOT NULL OR last_seen_at < :stale)
    """
    SESSION_SQL = """
        SELECT s.id, s.created_at, s.last_seen_at, a.login_id
        FROM account_sessions AS s JOIN accounts AS a ON a.id = s.account_id
        WHERE s.token_hash = :token_hash AND s.ended_at IS NULL AND a.role = :role
    """
    TOUCH_SESSION_SQL = "UPDATE account_sessions SET last_seen_at = :now WHERE id = :id AND ended_at IS NULL"
    END_SESSION_SQL = """
        UPDATE account_sessions SET ended_at = :now
        WHERE token_hash = :token_hash AND ended_at IS NULL
          AND account_id IN (SELECT id FROM accounts WHERE role = :role)
    """
    END_ALL_SQL = "UPDATE account_sessions SET ended_at = :now WHERE account_id = :account_id AND ended_at IS NULL"

    def start_session(self, account: Account, now: datetime, idle_limit: timedelta) -> str:
        """Record a new session of `account` and return its token (for the cookie; only its hash is kept).
        Ended and long-idle sessions of the account are dropped on the way, so the table stays small."""
        token = secrets.token_urlsafe(32)
        with self.store.transaction() as conn:
            conn.execute(self.PRUNE_SESSIONS_SQL, {"account_id": account.id, "stale": _utc(now - idle_limit)})
            conn.execute(self.START_SESSION_SQL, {"token_hash": hash_token(token), "account_id": account.id,
                                                  "now": _utc(now)})
        return token

    def session_account(self, token: str, now: datetime, idle_limit: timedelta,
                        lifetime: timedelta | None = None) -> Account | None:
        """The account of a live session, or None: unknown or ended token, idle beyond `idle_limit`, or
        older than `lifetime` (a stolen cookie kept busy does not live for ever).

        Use keeps a session alive (last_seen_at is moved on at most once a minute, so reading pages
        does not turn into a write per request)."""
        if not isinstance(token, str) or not token:
            return None
        row = self.store.conn.execute(self.SESSION_SQL, {"token_hash": hash_token(token),
                                                         "role": self.ROLE}).fetchone()
        if row is None:
            return None
        last_seen = datetime.fromisoformat(row["last_seen_at"])
        too_old = lifetime is not None and now - datetime.fromisoformat(row["created_at"]) >= lifetime
        if now - last_seen >= idle_limit or too_old:
            self.end_session(token, now)
            return None
        if now - last_seen >= self.SESSION_TOUCH_EVERY:
            with self.store.transaction() as conn:
                conn.execute(self.TOUCH_SESSION_SQL, {"now": _utc(now), "id": row["id"]})
        return self.get(row["login_id"])

    def end_session(self, token: str, now: datetime) -> None:
        """Sign out: the session of this token ends for every copy of the cookie."""
        if isinstance(token, str) and token:
            with self.store.transaction() as conn:
                conn.execute(self.END_SESSION_SQL, {"token_hash": hash_token(token), "role": self.ROLE,
                                                    "now": _utc(now)})

    def _end_all(self, conn, account_id: int, now: datetime) -> int:
        return conn.execute(self.END_ALL_SQL, {"account_id": account_id, "now": _utc(now)}).rowcount

    def _burn(self, password: str) -> None:
        """Spend the time a real verification costs, so an unknown id is not faster to reject."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        try:
            self.hasher.verify(self._dummy_hash, password or "")
        except VerificationError:
            pass


class StaffAccounts(Accounts):
    """Staff of an association: a county or prefectural association they belong to, and sign-in to the
    web chat. Removing one ends their sessions and closes their conversations to anyone added later."""

    ROLE = "staff"

    def validate(self, login_id: str, display_name: str, level: str, association_code: str,
                 password: str) -> dict:
        """Check every field and return the row to insert; raises InvalidAccount in Japanese."""
        login = normalize_login_id(login_id)
        if not LOGIN_ID.fullmatch(login):
            raise InvalidAccount("ログインIDは英小文字・数字・記号（. _ @ -）の3〜64文字で、英数字で始めてください。")
        name = " ".join((display_name or "").split())
        if not name or len(name) > 60:
            raise InvalidAccount("表示名を60文字以内で入力してください。")
        if level not in LEVEL_JA:
            raise InvalidAccount("所属の区分は county（郡市区等医師会）か prefecture（都道府県医師会）です。")
        if association_name(level, association_code, self.records_db) is None:
            raise InvalidAccount(f"{LEVEL_JA[level]}のコード「{association_code}」が見つかりません。"
                                 "都道府県医師会は2桁（例: 13）、郡市区等医師会は5桁（例: 13001）です。")
        return {"login_id": login, "display_name": name, "level": level, "association_code": association_code,
                "password_hash": self._hash_new(password)}

    def add(self, login_id: str, display_name: str, level: str, association_code: str, password: str,
            now: str) -> Account:
        return self._add(self.validate(login_id, display_name, level, association_code, password), now)

    def put_demo(self, login_id: str, display_name: str, level: str, association_code: str, password: str,
                 now: str) -> Account:
        """A demo staff account with this password (see `Accounts._put_demo`)."""
        return self._put_demo(self.validate(login_id, display_name, level, association_code, password), password, now)

    def _existing(self, login_id: str) -> Account:
        account = self.get(login_id)
        if account is None:
            raise UnknownAccount(normalize_login_id(login_id))
        return account

    def set_password(self, login_id: str, password: str, now: datetime) -> tuple[Account, int]:
        """Replace an account's password and end all its sessions; returns the account and how many ended."""
        account = self._existing(login_id)
        new_hash = self._hash_new(password)
        with self.store.transaction() as conn:
            conn.execute(self.SET_PASSWORD_SQL, {"password_hash": new_hash, "id": account.id})
            ended = self._end_all(conn, account.id, now)
        return self.get(account.login_id), ended

    REMOVE_SQL = "DELETE FROM accounts WHERE id = :id"
    # A removed account's conversations go to an owner no login id can spell (no ':' is allowed),
    # so someone later added under the same login id cannot read them.
    ORPHAN_CONVERSATIONS_SQL = "UPDATE conversations SET owner = :gone WHERE owner = :login_id"

    def remove(self, login_id: str, now: datetime) -> int:
        """Delete an account, ending its sessions first; returns how many sessions were ended."""
        account = self._existing(login_id)
        with self.store.transaction() as conn:
            ended = self._end_all(conn, account.id, now)
            conn.execute(self.ORPHAN_CONVERSATIONS_SQL, {"gone": f"removed:{account.id}",
                                                         "login_id": account.login_id})
            conn.execute(self.REMOVE_SQL, {"id": account.id})
        return ended

    def end_sessions(self, login_id: str, now: datetime) -> int:
        """End every session of one account (`helpdesk staff signout`); returns how many were live."""
        account = self._existing(login_id)
        with self.store.transaction() as conn:
            return self._end_all(conn, account.id, now)


def session_fingerprint(account: Account) -> str:
    """A short digest of the password hash, kept in the session cookie.

    When the password changes (or is rehashed at sign-in) the fingerprint changes, so sessions signed
    in under the old password end even if the hash was changed behind the server's back (sessions
    ended through `set_password` are ended in account_sessions as well).
    """
    return hashlib.sha256(account.password_hash.encode()).hexdigest()[:16]


def _utc(moment: datetime) -> str:
    """Session times are stored in UTC, so that comparing the strings compares the moments."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")
