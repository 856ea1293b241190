"""Shared helpers for the tests of staff sign-in and record lookups: a small demo records database
(built once and copied), staff accounts with a known password, and the chat askers of every role."""
from __future__ import annotations

import shutil
from pathlib import Path

from bot import Asker

PASSWORD = "correct-horse-battery-13"
DEMO_MEMBERS = 300
DEMO_SEED = 15

# login id: (display name, level, association code)
STAFF = {
    "chiyoda": ("千代田区医師会 事務局（テスト）", "county", "13001"),
    "chuo": ("中央区医師会 事務局（テスト）", "county", "13002"),
    "kita": ("大阪市北区医師会 事務局（テスト）", "county", "27001"),
    "tokyo": ("東京都医師会 事務局（テスト）", "prefecture", "13"),
    "osaka": ("大阪府医師会 事務局（テスト）", "prefecture", "27"),
}


def staff_asker(login_id: str) -> Asker:
    name, level, code = STAFF[login_id]
    return Asker(role="staff", display_name=name, association_code=code, association_level=level, account=login_id)


def build_demo(path: Path) -> Path:
    from records.demo import generate_demo

    generate_demo(path, members=DEMO_MEMBERS, seed=DEMO_SEED)
    return path


def add_records_and_staff(instance, demo_db: Path) -> None:
    """Copy the demo records into an instance and create every STAFF account with PASSWORD."""
    from bot import Store
    from bot.accounts.staff import StaffAccounts

    shutil.copyfile(demo_db, instance.records_db)
    store = Store(instance.helpdesk_db)
    try:
        accounts = StaffAccounts(store, records_db=instance.records_db)
        for login_id, (name, level, code) in STAFF.items():
            accounts.add(login_id, name, level, code, PASSWORD, "2026-11-25T09:00:00+09:00")
    finally:
        store.close()
