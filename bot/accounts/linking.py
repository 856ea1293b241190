"""One-time link codes: how a doctor's messaging account comes to stand for their member number.

A secretariat's staff member, who may see the member, issues a code (`issue`); the doctor sends it to
the bot from their messaging account, and the channel calls `consume` with its own id for that
account. From then on the channel asks as that member (`linked_member`), who may see only their own
records. Codes are 8 characters from an alphabet without look-alikes, expire (15 minutes by default)
and work once.

Only the code's SHA-256 is stored. A slow KDF is not needed: the code is random (31^8 ≈ 8.5 × 10^11
values) and lives for minutes, so a stolen table cannot be searched before the codes expire, while a
plain hash lets `consume` find the row by an indexed equality instead of trying every live code.
"""
from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.errors import HelpdeskError
from bot.store.database import Store, hash_token

# No 0/O, 1/I/L: the doctor reads the code off a screen or a phone call and types it.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
_MEMBER_NUMBER = re.compile(r"[0-9]{7}")
_SEPARATORS = re.compile(r"[\s\-‐－ー_]+")


class LinkCodeInvalid(HelpdeskError):
    """Unknown, expired or already used: the doctor is told the same either way.

    `reason` ("unknown", "expired", "used") is for logs and tests only.
    """

    message_ja = "連携コードが正しくないか、有効期限が切れています。医師会事務局に新しいコードの発行を依頼してください。"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class IssuedCode:
    code: str
    member_number: str
    expires_at: str


@dataclass(frozen=True)
class MemberLink:
    channel: str
    external_user_id: str
    member_number: str
    linked_at: str


def normalize_code(text: str) -> str:
    """What the doctor typed → the code: full-width folded, upper case, spaces and hyphens dropped."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text or "")).upper()


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class LinkCodes:
    """Issues and consumes link codes in the help desk database of `store`."""

    def __init__(self, store: Store, lifetime: timedelta = timedelta(minutes=15)):
        self.store = store
        self.lifetime = lifetime

    INSERT_SQL = """
        INSERT INTO link_codes (code_hash, member_number, issued_by, issued_at, expires_at)
        VALUES (:code_hash, :member_number, :issued_by, :issued_at, :expires_at)
    """
    FIND_SQL = "SELECT id, member_number, expires_at, used_at FROM link_codes WHERE code_hash = :code_hash"
    USE_SQL = """
        UPDATE link_codes SET used_at = :now, used_channel = :channel
        WHERE id = :id AND used_at IS NULL
    """
    LINK_SQL = """
        INSERT INTO member_links (channel, external_user_id, member_number, link_code_id, linked_at)
        VALUES (:channel, :external_user_id, :member_number, :link_code_id, :now)
        ON CONFLICT (channel, external_user_id) DO UPDATE SET
            member_number = excluded.member_number, link_code_id = excluded.link_code_id,
            linked_at = excluded.linked_at
    """
    LINKED_SQL = """
        SELECT channel, external_user_id, member_number, linked_at FROM member_links
        WHERE channel = :channel AND external_user_id = :external_user_id
    """
    UNLINK_SQL = "DELETE FROM member_links WHERE channel = :channel AND external_user_id = :external_user_id"

    def issue(self, member_number: str, issued_by: str, now: datetime) -> IssuedCode:
        """A fresh code for `member_number`. The caller has already checked that `issued_by` may see
        the member (Core.issue_link_code does, through the records' access check)."""
        if not _MEMBER_NUMBER.fullmatch(member_number):
            raise ValueError(f"not a member number: {member_number!r}")
        expires = now + self.lifetime
        with self.store.transaction() as conn:
            while True:  # a collision with a stored code is astronomically rare, but cheap to rule out
                code = new_code()
                if conn.execute(self.FIND_SQL, {"code_hash": hash_token(code)}).fetchone() is None:
                    break
            conn.execute(self.INSERT_SQL, {
                "code_hash": hash_token(code), "member_number": member_number, "issued_by": issued_by,
                "issued_at": _iso(now), "expires_at": _iso(expires),
            })
        return IssuedCode(code, member_number, _iso(expires))

    def _valid(self, conn, code: str, now: datetime):
        """The row of a code that may still be used; LinkCodeInvalid otherwise."""
        row = conn.execute(self.FIND_SQL, {"code_hash": hash_token(normalize_code(code))}).fetchone()
        if row is None:
            raise LinkCodeInvalid("unknown")
        if row["used_at"] is not None:
            raise LinkCodeInvalid("used")
        if datetime.fromisoformat(row["expires_at"]) <= now:
            raise LinkCodeInvalid("expired")
        return row

    def member_of(self, code: str, now: datetime) -> str:
        """The member number a valid code would link to, without using it (to ask before re-linking)."""
        return self._valid(self.store.conn, code, now)["member_number"]

    SPEND_SQL = """
        UPDATE link_codes SET used_at = :now, used_channel = :channel
        WHERE code_hash = :code_hash AND used_at IS NULL
    """

    def spend(self, code: str, channel: str, now: datetime) -> bool:
        """Make a code useless without linking anything: it was seen where others could read it (a
        group chat). True if a live code was spent; the caller says the same either way."""
        with self.store.transaction() as conn:
            return conn.execute(self.SPEND_SQL, {"now": _iso(now), "channel": channel,
                                                 "code_hash": hash_token(normalize_code(code))}).rowcount > 0

    def consume(self, code: str, channel: str, external_user_id: str, now: datetime) -> MemberLink:
        """Use a code once: link (channel, external_user_id) to its member number and return the link.

        Checked and spent in one write transaction, so two messages racing with the same code link
        at most one account. A chat already linked is re-linked to the new member number.
        """
        if not channel or not external_user_id:
            raise ValueError("channel and external_user_id are required")
        with self.store.transaction() as conn:
            row = self._valid(conn, code, now)
            conn.execute(self.USE_SQL, {"now": _iso(now), "channel": channel, "id": row["id"]})
            conn.execute(self.LINK_SQL, {"channel": channel, "external_user_id": str(external_user_id),
                                         "member_number": row["member_number"], "link_code_id": row["id"],
                                         "now": _iso(now)})
        return MemberLink(channel, str(external_user_id), row["member_number"], _iso(now))

    def linked_member(self, channel: str, external_user_id: str) -> MemberLink | None:
        row = self.store.conn.execute(self.LINKED_SQL, {"channel": channel,
                                                        "external_user_id": str(external_user_id)}).fetchone()
        return MemberLink(*row) if row else None

    def unlink(self, channel: str, external_user_id: str) -> bool:
        with self.store.transaction() as conn:
            return conn.execute(self.UNLINK_SQL, {"channel": channel,
                                                  "external_user_id": str(external_user_id)}).rowcount > 0
