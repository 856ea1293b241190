"""Institution name search over a national master: the answers of counting every shared bigram, at a
cost that does not grow with the thousands of clinics that share a common one (issue 24)."""
import dataclasses
import sqlite3

import pytest

from records import names
from records.access import Asker
from records.import_institutions import InstitutionRow, write_institutions
from records.lookup import Records
from records.schema import MIGRATIONS, connect_writer
from storage.sqlite import apply_migrations

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
        DROP TABLE institution_grams;
        CREATE TABLE institution_grams (gram TEXT NOT NULL, institution_id INTEGER NOT NULL,
                                        PRIMARY KEY (gram, institution_id)) WITHOUT ROWID;
        DELETE FROM migrations WHERE name IN ('0005_institution_grams_by_prefecture',
                                              '0007_institution_grams_keyed_by_prefecture');
    """)
    target.close()
    assert "0005_institution_grams_by_prefecture" in [name for name, _statements in MIGRATIONS]
    found = _search(path, tmp_path / "audit.sqlite", TOKYO, "千代田さくら内科")
    assert found == [("千代田さくら内科クリニック", "13", 90.0)]


def _grams_table(conn) -> tuple[set, set, list]:
    rows = set(conn.execute("SELECT gram, prefecture_code, institution_id FROM institution_grams"))
    pk = {r[1] for r in conn.execute("SELECT * FROM pragma_table_info('institution_grams') WHERE pk > 0")}
    indexes = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                          "AND tbl_name = 'institution_grams' AND sql IS NOT NULL")]
    return rows, pk, indexes


def test_migration_0007_keys_the_grams_by_prefecture_keeping_every_row(tmp_path):
    """A database of 0006 (grams keyed by gram and institution, plus an index with the prefecture) is
    rebuilt as one b-tree keyed the way searches read it; every gram row is kept and searches answer
    the same."""
    path = tmp_path / "0006.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, MIGRATIONS[:6])
    conn.close()
    rows = [_row(1, 13, "千代田さくら内科クリニック", "チヨダサクラナイカクリニック"),
            _row(2, 13, "さくら内科クリニック", "サクラナイカクリニック"),
            _row(3, 40, "博多さくら通り皮膚科", "ハカタサクラドオリヒフカ")]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany("INSERT OR IGNORE INTO associations (code, level, name, prefecture_code) VALUES (?, 'county', ?, ?)",
                     [(r.county_code, r.county_name, r.prefecture_code) for r in rows])
    for id_, r in enumerate(rows, start=1):
        conn.execute("INSERT INTO institutions (id, institution_code, name, kana, name_key, kana_key, address, "
                     "prefecture_code, county_code, source, master_status) "
                     "VALUES (?, ?, ?, ?, ?, ?, '所在地', ?, ?, 'vendor', 'in_master')",
                     (id_, r.institution_code, r.name, r.kana, names.fold(r.name), names.fold(r.kana),
                      r.prefecture_code, r.county_code))
        conn.executemany("INSERT INTO institution_grams (gram, institution_id, prefecture_code) VALUES (?, ?, ?)",
                         [(g, id_, r.prefecture_code) for g in names.institution_grams(r.name, r.kana)])
    conn.execute("COMMIT")
    before, _pk, old_indexes = _grams_table(conn)
    conn.close()
    assert old_indexes == ["institution_grams_by_prefecture"]
    before_search = _search(path, tmp_path / "audit.sqlite", TOKYO, "さくら内科")

    connect_writer(path).close()  # the next import applies 0007
    conn = sqlite3.connect(path)
    after, pk, indexes = _grams_table(conn)
    conn.close()
    assert after == before and len(after) > 20
    assert pk == {"gram", "prefecture_code", "institution_id"} and indexes == []
    assert _search(path, tmp_path / "audit.sqlite", TOKYO, "さくら内科") == before_search


def test_an_address_change_leaves_the_grams_alone_a_renamed_institution_gets_its_own(tmp_path):
    """A difference rewrites an institution's grams only where its name, kana or prefecture changed: a
    monthly master changes addresses far more often than names, and every gram row lives on a page of
    its own in a national table."""
    path = tmp_path / "records.sqlite"
    rows = [_row(1, 13, "千代田さくら内科クリニック", "チヨダサクラナイカクリニック"),
            _row(2, 13, "さくら内科クリニック", "サクラナイカクリニック")]
    conn = connect_writer(path)
    conn.execute("BEGIN")
    write_institutions(conn, rows, [], {})
    conn.execute("COMMIT")
    old = {key: (h, id_) for key, h, id_ in conn.execute("SELECT institution_code, row_hash, id FROM institutions")}
    moved = dataclasses.replace(rows[0], address="所在地２階")
    renamed = dataclasses.replace(rows[1], name="すずらん内科クリニック", kana="スズランナイカクリニック")
    was = names.institution_grams(rows[1].name, rows[1].kana)
    now = names.institution_grams(renamed.name, renamed.kana)
    conn.execute("BEGIN")
    before = conn.total_changes
    write_institutions(conn, [moved, renamed], [], old)
    written = conn.total_changes - before
    conn.execute("COMMIT")
    # two institution rows updated, the renamed one's indexed name key once more (the moved one's
    # indexed columns are left alone), and only the grams the new name gained or lost
    assert was & now == set() and written == 2 + 1 + len(was) + len(now), (written, was, now)
    grams = {(g, i) for g, i in conn.execute("SELECT gram, institution_id FROM institution_grams")}
    conn.close()
    assert grams == {(g, 1) for g in names.institution_grams(moved.name, moved.kana)} | {
        (g, 2) for g in names.institution_grams(renamed.name, renamed.kana)}
    assert [name for name, _p, _s in _search(path, tmp_path / "audit.sqlite", TOKYO, "すずらん")] == [
        "すずらん内科クリニック"]


def _schema(conn) -> list:
    return sorted(conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))


def test_a_bulk_load_builds_the_indexes_after_the_rows_and_a_failed_one_keeps_them(tmp_path, monkeypatch):
    """Loading an empty institutions table drops its indexes for the insert and creates them again in
    the same transaction: the schema afterwards is exactly the migrated one, and a load that fails
    half-way rolls the drop back too."""
    import records.import_institutions as module
    monkeypatch.setattr(module, "BULK_ROWS", 2)
    rows = [_row(i, 13, f"さくら{i}内科", f"サクラ{i}ナイカ") for i in range(1, 4)]
    path = tmp_path / "records.sqlite"
    conn = connect_writer(path)
    migrated = _schema(conn)
    statements = []
    conn.set_trace_callback(statements.append)
    conn.execute("BEGIN")
    write_institutions(conn, rows, [], {})
    conn.execute("COMMIT")
    conn.set_trace_callback(None)
    assert any(s.startswith('DROP INDEX "institutions_by_name"') for s in statements)
    assert _schema(conn) == migrated
    plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN SELECT id FROM institutions WHERE name_key = 'x'"))
    assert "institutions_by_name" in plan

    conn.execute("BEGIN")
    conn.execute("DELETE FROM institution_grams")
    conn.execute("DELETE FROM institutions")
    broken = rows + [dataclasses.replace(rows[0], name="別名")]  # the same code twice: the insert fails
    with pytest.raises(sqlite3.IntegrityError):
        write_institutions(conn, broken, [], {})
    conn.execute("ROLLBACK")
    assert _schema(conn) == migrated
    assert conn.execute("SELECT count(*) FROM institutions").fetchone()[0] == 3
    conn.close()
