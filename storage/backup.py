"""Consistent copies of every database of an instance while it serves, and bringing one back.

`backup(instance_path, dest)` copies each database with SQLite's online backup API in one step: the
copy is a snapshot of one read transaction, so every transaction committed before the backup read
that database is in it and none is half in it. In WAL mode that read blocks no writer, so the server
keeps answering. Each copy is checked with `PRAGMA integrity_check` and described in `manifest.json`
(time, sizes, SHA-256, applied migrations), and the folder appears under its final name only when
complete, so a folder named like a backup is a whole backup. Only its owner may open the folder or
anything in it (storage/files.py): it holds every member record and password hash.

`restore(instance_path, source)` checks a backup (manifest, checksums, integrity, no migration that
this version does not know) before touching anything, keeps a copy of what it replaces, and writes
each database back through the same API, which takes the database's write lock: a process that has
the file open sees the old content or the new, never a mix.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from storage.files import private_file, private_folder, tighten
from storage.sqlite import connect

FORMAT = 1
MANIFEST = "manifest.json"
#: Every database of an instance worth keeping (kb.sqlite is rebuilt by `helpdesk index`, but a restored
#: instance then answers at once). ratelimit.sqlite and metrics/ hold nothing worth restoring.
DATABASES = ("helpdesk.sqlite", "audit.sqlite", "records.sqlite", "kb.sqlite")
#: Plain files copied as they are: the settings and the key that signs sessions.
FILES = ("config.toml", "config.json", "secret_key")


class BackupError(Exception):
    """A backup that cannot be taken or used; the message is Japanese and says what to do."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _migrations(conn: sqlite3.Connection) -> list[str] | None:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'").fetchone() is None:
        return None
    return [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY name")]


def integrity(conn: sqlite3.Connection) -> str:
    rows = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    return "ok" if rows == ["ok"] else "; ".join(rows[:5])


def copy_database(source: Path, target: Path) -> dict:
    """Snapshot `source` into the new file `target` (one step of the backup API: one read transaction),
    leave it as a self-contained rollback-journal file, check it and describe it."""
    with closing(connect(source, readonly=True)) as src, closing(sqlite3.connect(private_file(target))) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = DELETE")
        checked = integrity(dst)
        migrations = _migrations(dst)
    if checked != "ok":
        raise BackupError(f"{source.name} のコピーが整合性検査に通りませんでした: {checked}")
    return {"bytes": target.stat().st_size, "sha256": sha256(target), "integrity": checked,
            "migrations": migrations}


def backup(instance_path, dest) -> dict:
    """Copy the instance's databases and settings into the new folder `dest`; return the manifest."""
    instance_path, dest = Path(instance_path), Path(dest).resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} は空のフォルダではありません。新しいフォルダを指定してください。")
    present = [name for name in DATABASES if (instance_path / name).exists()]
    if not present:
        raise BackupError(f"{instance_path} にデータベースがありません。インスタンスフォルダを確認してください。")
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    private_folder(partial)
    manifest = {"format": FORMAT, "started_at": _now(), "instance": str(instance_path.resolve()),
                "databases": {}, "files": {}}
    try:
        for name in present:
            manifest["databases"][name] = copy_database(instance_path / name, partial / name)
        for name in FILES:
            if (instance_path / name).exists():
                shutil.copy2(instance_path / name, partial / name)
                tighten(partial / name)  # copy2 copies the mode too, and config.toml may be 0644
                manifest["files"][name] = {"bytes": (partial / name).stat().st_size, "sha256": sha256(partial / name)}
        manifest["finished_at"] = _now()
        private_file(partial / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        if dest.exists():
            dest.rmdir()
        partial.rename(dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def rotate(folder, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups made by `backup_into` in `folder`; return the deleted."""
    backups = sorted(p for p in Path(folder).glob("helpdesk-*") if (p / MANIFEST).exists())
    doomed = backups[:-keep] if keep > 0 else backups
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def backup_into(instance_path, folder, keep: int) -> tuple[Path, dict, list[Path]]:
    """A backup in a new time-stamped subfolder of `folder`, then rotation to `keep` backups."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")  # sorts by time; unique per run
    dest = Path(folder) / f"helpdesk-{stamp}"
    manifest = backup(instance_path, dest)
    return dest, manifest, rotate(folder, keep)


def verify(source, known: dict[str, list[str]]) -> dict:
    """Check a backup folder without changing anything; return its manifest.

    `known` maps a database file name to the migrations this version applies: a backup from a newer
    version (a migration not in the list) is refused, since this code would not understand it.
    """
    source = Path(source)
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BackupError(f"{source} に読める {MANIFEST} がありません。helpdesk backup で作ったフォルダを指定してください。")
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source} の形式（{manifest.get('format')}）はこのバージョンでは読めません。")
    for group in ("databases", "files"):
        for name, facts in manifest.get(group, {}).items():
            path = source / name
            if Path(name).name != name or not path.is_file() or sha256(path) != facts["sha256"]:
                raise BackupError(f"{source} の {name} が見つからないか、内容が manifest と一致しません。")
    for name, facts in manifest["databases"].items():
        with closing(connect(path := source / name, readonly=True)) as conn:
            checked = integrity(conn)
        if checked != "ok":
            raise BackupError(f"{path} が整合性検査に通りませんでした: {checked}")
        unknown = sorted(set(facts.get("migrations") or []) - set(known.get(name, facts.get("migrations") or [])))
        if unknown:
            raise BackupError(f"{name} にこのバージョンが知らない変更（{', '.join(unknown)}）があります。"
                              "新しいバージョンで作られたバックアップです。")
    return manifest


def restore(instance_path, source, known: dict[str, list[str]]) -> tuple[dict, Path | None]:
    """Check `source`, keep a copy of the current instance, then write the backup back in place.

    Returns the manifest and the folder holding the copy taken before (None when there was nothing).
    """
    instance_path, source = Path(instance_path), Path(source)
    manifest = verify(source, known)
    before = None
    if any((instance_path / name).exists() for name in DATABASES):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        before = instance_path / "backups" / f"before-restore-{stamp}"
        backup(instance_path, before)
    for name in manifest["databases"]:
        target = instance_path / name
        with closing(connect(source / name, readonly=True)) as src, closing(connect(target)) as dst:
            src.backup(dst)
            dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for name in manifest["files"]:
        shutil.copy2(source / name, instance_path / name)
        tighten(instance_path / name)  # a backup made before files were private has them 0644
    return manifest, before
