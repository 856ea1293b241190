"""Only the help desk's own user may open an instance, its databases (with their -wal and -shm) and its
backups, even under the usual umask 022; an instance made before this is closed at its next start;
the systemd units set UMask=0077 for every other file (issue 19, item 9)."""
from __future__ import annotations

import configparser
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT, build_instance


@pytest.fixture(autouse=True)
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def modes(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (itself as "."), by relative path, with its permission bits."""
    entries = [folder, *folder.rglob("*")]
    return {str(p.relative_to(folder)): oct(stat.S_IMODE(p.stat().st_mode)) for p in entries}


def test_an_instance_and_every_database_in_it_are_private(tmp_path):
    from handlers.web.app import create_app
    from records.schema import connect_writer

    instance = build_instance(tmp_path / "instance")
    connect_writer(instance.records_db).close()
    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True})
    try:
        assert app.test_client().post("/api/conversations").status_code == 201
        found = {name: mode for name, mode in modes(instance.path).items() if ".sqlite" in name or name == "."}
        # while the app holds its databases open, their -wal and -shm files exist too
        assert {"helpdesk.sqlite-wal", "helpdesk.sqlite-shm"} <= set(found)
        assert found == {name: "0o700" if name == "." else "0o600" for name in found}
    finally:
        app.extensions["helpdesk"].close()


def test_an_instance_made_before_is_closed_when_it_is_next_opened(tmp_path):
    from helpdesk.instance import Instance
    from storage.sqlite import connect

    folder = tmp_path / "old"
    folder.mkdir(mode=0o755)
    older = sqlite3.connect(folder / "helpdesk.sqlite")  # as an older version left it: 0644, in WAL
    older.execute("PRAGMA journal_mode = WAL")
    older.execute("CREATE TABLE t (x)")
    assert modes(folder) == {".": "0o755", "helpdesk.sqlite": "0o644", "helpdesk.sqlite-wal": "0o644",
                             "helpdesk.sqlite-shm": "0o644"}
    instance = Instance.at(folder)
    connect(instance.helpdesk_db).close()
    older.close()
    assert modes(folder) == {".": "0o700", "helpdesk.sqlite": "0o600"}


def test_a_backup_and_the_folders_it_makes_are_private(tmp_path):
    from bot.store.database import Store
    from handlers.cli.main import cli

    instance = build_instance(tmp_path / "instance")  # its config.json is written 0644
    Store(instance.helpdesk_db).close()
    dest = tmp_path / "backups" / "daily" / "one"
    result = CliRunner().invoke(cli, ["--instance", str(instance.path), "backup", "--json", str(dest)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["path"] == str(dest)
    assert modes(dest) == {".": "0o700", "manifest.json": "0o600", "config.json": "0o600",
                           "helpdesk.sqlite": "0o600", "kb.sqlite": "0o600"}
    assert modes(tmp_path / "backups")["."] == modes(tmp_path / "backups" / "daily")["."] == "0o700"


def test_every_systemd_unit_sets_a_private_umask():
    units = sorted((ROOT / "deploy").glob("*.service"))
    assert len(units) == 3
    for unit in units:
        parsed = configparser.ConfigParser(strict=False, interpolation=None)
        parsed.optionxform = str
        parsed.read(unit, encoding="utf-8")
        assert parsed["Service"].get("UMask") == "0077", unit.name
