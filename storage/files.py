"""Files and folders of an instance that only the help desk's own user may open.

The databases hold member records, password hashes and the access log, and a backup holds them all:
under the usual umask 022 every one of them was readable by any local user (issue 19, item 9). What
the help desk creates is created 0600 (folders 0700), and what it finds more open it closes, so an
instance made by an older version is fixed by the next start. Only what this user owns is changed:
`--instance` or a backup destination pointed at a shared folder must not take it away from others.
The systemd units add `UMask=0077` (deploy/), so any other file a process writes is private too.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def tighten(path: Path | str) -> None:
    """Take group and other access away from `path` when this user owns it; a missing path is fine."""
    try:
        facts = os.stat(path)
    except FileNotFoundError:
        return
    if facts.st_mode & 0o077 and facts.st_uid == os.geteuid():
        try:
            os.chmod(path, stat.S_IMODE(facts.st_mode) & ~0o077)
        except OSError:  # a read-only file system: nothing can be written there either
            pass


def private_file(path: Path | str) -> Path:
    """Create `path` empty and 0600 unless it exists; either way, only its owner may open it."""
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        tighten(path)
    return path


def private_folder(path: Path | str) -> Path:
    """Create `path` 0700 (missing parents too) unless it exists; either way, only its owner may open it.

    A parent that exists already is left as it is (it may be /var/backups or a home folder)."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
    tighten(path)
    return path
