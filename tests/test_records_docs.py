"""docs/records.md stays in step with the code it documents."""
from pathlib import Path

import pytest

from records.demo_material import WELL_KNOWN_APPLICATIONS, WELL_KNOWN_MEMBERS
from records.schema import MIGRATIONS
from records.kinds import KINDS

DOC = (Path(__file__).resolve().parent.parent / "docs" / "records.md").read_text(encoding="utf-8")


def _column_tables() -> list[dict[str, str]]:
    """Each 列名 | 必須 | 内容 table of the document, as {header: requirement}."""
    tables, table = [], None
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells and cells[:2] == ["列名", "必須"]:
            table = {}
            tables.append(table)
        elif cells and table is not None and len(cells) == 3 and not cells[0].startswith("---"):
            table[cells[0]] = cells[1]
        elif not cells:
            table = None
    return tables


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_csv_column_is_documented_with_its_requirement(kind):
    want = {c.header: ("○" if c.required else "") for c in KINDS[kind].format.columns}
    assert any(all(table.get(h) == r for h, r in want.items()) for table in _column_tables()), kind


def test_not_covered_yet_is_gone():
    assert "Not covered yet" not in DOC


def test_migrations_and_well_known_records_are_documented():
    for name, _statements in MIGRATIONS:
        assert f"`{name}`" in DOC
    for number in WELL_KNOWN_MEMBERS:
        assert f"member {number}" in DOC
    for number in WELL_KNOWN_APPLICATIONS:
        assert number in DOC
