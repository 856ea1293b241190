"""`helpdesk backup --rotate` keeps the newest N; a backup from a newer version or with a broken
manifest is refused before anything is touched (taking one under load is in test_ops_load.py)."""
from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from bot.store.database import Store
from handlers.cli.main import cli
from storage.backup import BackupError, restore, verify
from handlers.web.health import known_migrations
from tests.conftest import build_instance


@pytest.fixture
def instance(tmp_path):
    instance = build_instance(tmp_path / "instance")
    Store(instance.helpdesk_db).close()
    return instance


def invoke(instance, *args):
    return CliRunner().invoke(cli, ["--instance", str(instance.path), *args])


def test_rotation_keeps_the_newest(instance, tmp_path):
    folder = tmp_path / "daily"
    made = []
    for _ in range(4):
        result = invoke(instance, "backup", "--rotate", "--keep", "2", "--json", str(folder))
        assert result.exit_code == 0, result.output
        made.append(json.loads(result.output)["path"])
    assert sorted(str(p) for p in folder.iterdir()) == made[2:]
    manifest = json.loads((folder / made[-1] / "manifest.json").read_text())
    assert set(manifest["databases"]) == {"helpdesk.sqlite", "kb.sqlite"}
    assert manifest["databases"]["helpdesk.sqlite"]["migrations"] == known_migrations()["helpdesk.sqlite"]
    assert set(manifest["files"]) == {"config.json"}  # no app has run here, so there is no secret_key yet


def test_backup_needs_a_new_folder_and_a_destination(instance, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    result = invoke(instance, "backup", str(tmp_path / "full"))
    assert result.exit_code == 1 and "空のフォルダではありません" in result.output
    result = invoke(instance, "backup")
    assert result.exit_code == 1 and "BACKUP_DIR" in result.output


def test_a_backup_from_a_newer_version_is_refused_untouched(instance, tmp_path):
    source = tmp_path / "newer"
    assert invoke(instance, "backup", str(source)).exit_code == 0
    with sqlite3.connect(source / "helpdesk.sqlite") as conn:
        conn.execute("INSERT INTO migrations (name, applied_at) VALUES ('9999_from_the_future', 'x')")
    manifest = json.loads((source / "manifest.json").read_text())
    facts = manifest["databases"]["helpdesk.sqlite"]
    from storage.backup import sha256
    facts["sha256"] = sha256(source / "helpdesk.sqlite")
    facts["migrations"].append("9999_from_the_future")
    (source / "manifest.json").write_text(json.dumps(manifest))
    before = instance.helpdesk_db.read_bytes()
    with pytest.raises(BackupError, match="9999_from_the_future"):
        restore(instance.path, source, known_migrations())
    assert instance.helpdesk_db.read_bytes() == before and not (instance.path / "backups").exists()
    (source / "manifest.json").write_text("{")
    with pytest.raises(BackupError, match="manifest.json"):
        verify(source, known_migrations())
