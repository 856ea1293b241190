"""Every kind of import, in the order a real installation loads them, and exporting them as files.

Members first (they register the county associations the others refer to), then the
institution master, then applications, then family-doctor reports (which belong to
institutions). The CLI, the column map setting, /readyz and the demo all read this list.
"""
from __future__ import annotations

from pathlib import Path

from storage.sqlite import connect

from .csv_format import write_csv
from .import_applications import APPLICATION_IMPORT
from .import_institutions import INSTITUTION_IMPORT
from .import_reports import REPORT_IMPORT
from .importer import ImportKind
from .sync import MEMBER_IMPORT

KINDS: dict[str, ImportKind] = {k.name: k for k in (MEMBER_IMPORT, INSTITUTION_IMPORT, APPLICATION_IMPORT,
                                                    REPORT_IMPORT)}


def headers() -> dict[str, set[str]]:
    """Our column headers per kind (what a column map may rename a received header to)."""
    return {name: {c.header for c in kind.format.columns} | {"operation"} for name, kind in KINDS.items()}


def export_files(db_path: Path | str, folder: Path | str, *, encoding: str = "utf-8") -> dict[str, int]:
    """Write every kind stored in a records database as its full file in `folder`; rows per file.

    This is how the demo becomes files that `helpdesk sync-*` imports, so the demo and a real
    installation take the same path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    conn = connect(db_path, readonly=True)
    try:
        counts = {}
        for kind in KINDS.values():
            rows = kind.load_rows(conn)
            write_csv(folder / kind.file_name, kind.format, rows, encoding=encoding)
            counts[kind.name] = len(rows)
        return counts
    finally:
        conn.close()
