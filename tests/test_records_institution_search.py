"""Institution name search over a national master: the answers of counting every shared bigram, at a
cost that does not grow with the thousands of clinics that share a common one (issue 24)."""
import sqlite3

import pytest

from records.access import Asker
from records.import_institutions import InstitutionRow, write_institutions
from records.lookup import Records
from records.schema import MIGRATIONS, connect_writer

TOKYO = Asker.county_staff("13001")
# Names sharing サク and クラ with a search for さくら (name and kana give the same grams), spread over
# every prefecture but Tokyo.
COMMON = [("さくら内科クリニック", "サクラナイカクリニック"), ("さくら眼科", "サクラガンカ"),
          ("さくらんぼ小児科", "サクランボショウニカ"), ("さくら坂クリニック", "サクラザカクリニック")]


def _row(serial: int, pref: int, name: str, kana: str) -> InstitutionRow:
    p = f"{pref:02d}"
    return InstitutionRow(f"{p}1{serial:07d}", name, kana, None, "所在地", p, f"{p}001", f"{p}医師会",
                          "clinic", delivered_in="2026-10")


def _master(path, far: int) -> None:
    """`far` clinics with common names outside Tokyo, plus the few a test looks for."""
    rows = [_row(i, 14 + i % 34, *COMMON[i % len(COMMON)]) for i in range(far)]
    rows += [_row(far + 1, 13, "千代田さくら内科クリニック", "チヨダサクラナイカクリニック"),
             _row(far + 2, 13, "さくら内科クリニック", "サクラナイカクリニック"),
             _row(far + 3, 40, "博多さくら通り皮膚科", "ハカタサクラドオリヒフカ")]
    conn = connect_writer(path)
    conn.execute("BEGIN")
    write_institutions(conn, rows, [], {})
    conn.execute("COMMIT")
    conn.close()


@pytest.fixture(scope="module")
def masters(tmp_path_factory):
    base = tmp_path_factory.mktemp("national")
    out = {}
    for far in (1_000, 8_000):
        _master(base / f"{far}.sqlite", far)
        out[far] = base / f"{far}.sqlite"
    return out


def _search(path, audit, asker, query):
    with Records(path, audit) as records:
        return [(i.name, i.prefecture.code, score) for i, score in records.find_institutions(asker, query)]


def _steps(path, audit, asker, query) -> int:
    """SQLite virtual-machine steps of one search (in thousands): a cost that the machine's load does not
    change."""
    count = [0]

    def tick():
        count[0] += 1
        return 0

    with Records(path, audit) as records:
        records.connection().set_progress_handler(tick, 1000)
        records.find_institutions(asker, query)
    return count[0]


def test_the_own_prefecture_comes_first_among_thousands_of_namesakes(masters, tmp_path):
    found = _search(masters[8_000], tmp_path / "audit.sqlite", TOKYO, "さくら内科クリニック")
    assert found[0] == ("さくら内科クリニック", "13", 100.0)
    assert [name for name, _pref, _score in found[1:]] == ["さくら内科クリニック"] * 4


def test_a_distinctive_name_in_another_prefecture_is_found_among_them(masters, tmp_path):
    for far, path in masters.items():
        found = _search(path, tmp_path / "audit.sqlite", TOKYO, "さくら通り皮膚科")
        assert found[0] == ("博多さくら通り皮膚科", "40", 88.9), far
    # One wrong character (通り → 道り) still leaves the rarer grams (博多) to find it.
    assert _search(masters[8_000], tmp_path / "audit.sqlite", TOKYO, "博多さくら道り")[0][:2] == (
        "博多さくら通り皮膚科", "40")


def test_the_cost_of_a_search_does_not_grow_with_namesakes_elsewhere(masters, tmp_path):
    """Counting every clinic that shares さく/くら costs 8 times more with 8 times the clinics; reading
    the rest of the country through a budget of its rarest grams does not."""
    small, large = (_steps(masters[far], tmp_path / "audit.sqlite", TOKYO, "さくらクリニック")
                    for far in (1_000, 8_000))
    assert large < 1.5 * small, (small, large)


def test_a_database_not_yet_migrated_offers_the_names_that_start_with_the_query(masters, tmp_path):
    """The help desk only reads; until the next import applies 0005, a search answers without the grams."""
    path = tmp_path / "old.sqlite"
    src = sqlite3.connect(masters[1_000])
    src.backup(target := sqlite3.connect(path))
    src.close()
    target.executescript("""
        DROP INDEX institution_grams_by_prefecture;
        ALTER TABLE institution_grams DROP COLUMN prefecture_code;
        DELETE FROM migrations WHERE name = '0005_institution_grams_by_prefecture';
    """)
    target.close()
    assert "0005_institution_grams_by_prefecture" in [name for name, _statements in MIGRATIONS]
    found = _search(path, tmp_path / "audit.sqlite", TOKYO, "千代田さくら内科")
    assert found == [("千代田さくら内科クリニック", "13", 90.0)]
