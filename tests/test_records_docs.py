"""docs/records.md stays in step with the code it documents."""
from pathlib import Path

from records.demo import WELL_KNOWN_APPLICATIONS, WELL_KNOWN_MEMBERS
from records.schema import MIGRATIONS
from records.member_csv import COLUMNS

DOC = (Path(__file__).resolve().parent.parent / "docs" / "records.md").read_text(encoding="utf-8")


def test_every_csv_column_is_documented_with_its_requirement():
    table = {}
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3:
            table[cells[0]] = cells[1]
    for column in COLUMNS:
        assert table.get(column.header) == ("○" if column.required else ""), column.header


def test_migrations_and_well_known_records_are_documented():
    for name, _statements in MIGRATIONS:
        assert f"`{name}`" in DOC
    for number in WELL_KNOWN_MEMBERS:
        assert f"member {number}" in DOC
    for number in WELL_KNOWN_APPLICATIONS:
        assert number in DOC
