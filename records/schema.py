"""Schema of the local copy of MAMIS member data, as numbered migrations.

Each migration is a list of plain statements applied in one transaction together
with the row in `migrations` that records it, so a crash never leaves a half-applied
schema. Migrations only add: live data is never dropped. A shipped migration is frozen, literal SQL
built from nothing that may change later (tests/test_migrations.py): the `migrations` table records
names only, so an existing database never runs an edited one again. The same runner is used by
the access log (records/access.py), which has its own list.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.sqlite import BUSY_TIMEOUT_MS, Migration, apply_migrations, connect


_0001_INITIAL = [
    """CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    # Prefectures and counties in one table: a county points at its prefecture, a
    # prefecture at itself, so "counties under prefecture P" is one indexed query.
    """CREATE TABLE associations (
        code            TEXT PRIMARY KEY,
        level           TEXT NOT NULL CHECK (level IN ('prefecture', 'county')),
        name            TEXT NOT NULL,
        prefecture_code TEXT NOT NULL REFERENCES associations(code)
    )""",
    "CREATE INDEX associations_by_prefecture ON associations(prefecture_code, level)",
    # name/kana are display forms; *_key are folded for matching (records/names.py);
    # row_hash lets a re-import skip rows that did not change (idempotent, fast).
    """CREATE TABLE members (
        member_number  TEXT PRIMARY KEY CHECK (length(member_number) = 7),
        name           TEXT NOT NULL,
        kana           TEXT NOT NULL,
        name_key       TEXT NOT NULL,
        kana_key       TEXT NOT NULL,
        county_code    TEXT NOT NULL REFERENCES associations(code),
        status         TEXT NOT NULL CHECK (status IN ('active', 'pending', 'withdrawn')),
        workplace_code TEXT,
        workplace_name TEXT,
        joined_on      TEXT,
        withdrawn_on   TEXT,
        updated_on     TEXT,
        row_hash       TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX members_by_county_kana ON members(county_code, kana_key)",
    "CREATE INDEX members_by_county_name ON members(county_code, name_key)",
    # Who works where: lets a doctor see their own institution's master entry and report.
    "CREATE INDEX members_by_workplace ON members(workplace_code, workplace_name)",
    # Candidate prefilter for fuzzy name search: bigrams of name and kana keys, with
    # the county so that a staff member's scope narrows the index seek itself.
    """CREATE TABLE member_grams (
        gram          TEXT NOT NULL,
        county_code   TEXT NOT NULL,
        member_number TEXT NOT NULL,
        PRIMARY KEY (gram, county_code, member_number)
    ) WITHOUT ROWID""",
    # 送付区分: no row means the member has not set it yet (未設定).
    """CREATE TABLE delivery_settings (
        member_number TEXT NOT NULL,
        publication   TEXT NOT NULL
                      CHECK (publication IN ('jma_news', 'journal_regular', 'journal_special')),
        send          INTEGER NOT NULL CHECK (send IN (0, 1)),
        destination   TEXT CHECK (destination IN ('workplace', 'home', 'other')),
        PRIMARY KEY (member_number, publication)
    ) WITHOUT ROWID""",
]

_0002_APPLICATIONS = [
    # 入会届 (admission) and 異動届 (transfer). `stage` is where it sits now;
    # `state` says whether it is moving, returned (差戻し) or done.
    """CREATE TABLE applications (
        id                 INTEGER PRIMARY KEY,
        application_number TEXT NOT NULL UNIQUE,
        member_number      TEXT NOT NULL,
        kind               TEXT NOT NULL CHECK (kind IN ('admission', 'transfer')),
        county_code        TEXT NOT NULL REFERENCES associations(code),
        from_county_code   TEXT REFERENCES associations(code),
        submitted_on       TEXT NOT NULL,
        stage              TEXT NOT NULL CHECK (stage IN ('county', 'prefecture', 'jma', 'done')),
        state              TEXT NOT NULL
                           CHECK (state IN ('in_review', 'returned', 'completed', 'withdrawn'))
    )""",
    "CREATE INDEX applications_by_member ON applications(member_number, submitted_on)",
    """CREATE TABLE application_events (
        application_id INTEGER NOT NULL REFERENCES applications(id),
        seq            INTEGER NOT NULL,
        happened_on    TEXT NOT NULL,
        stage          TEXT NOT NULL CHECK (stage IN ('applicant', 'county', 'prefecture', 'jma')),
        action         TEXT NOT NULL CHECK (action IN
                       ('submitted', 'approved', 'returned', 'resubmitted', 'completed', 'withdrawn')),
        reason         TEXT,
        PRIMARY KEY (application_id, seq)
    ) WITHOUT ROWID""",
]

_0003_INSTITUTIONS = [
    # institution_code is the 10-digit 医療機関コード; a clinic typed in by hand
    # (source 'manual') has none until the regional bureau registers it.
    """CREATE TABLE institutions (
        id               INTEGER PRIMARY KEY,
        institution_code TEXT UNIQUE,
        name             TEXT NOT NULL,
        kana             TEXT NOT NULL,
        name_key         TEXT NOT NULL,
        kana_key         TEXT NOT NULL,
        postal_code      TEXT,
        address          TEXT NOT NULL,
        prefecture_code  TEXT NOT NULL REFERENCES associations(code),
        county_code      TEXT NOT NULL REFERENCES associations(code),
        source           TEXT NOT NULL CHECK (source IN ('vendor', 'manual')),
        master_status    TEXT NOT NULL
                         CHECK (master_status IN ('in_master', 'waiting_bureau', 'unmatched')),
        filed_on         TEXT,
        registered_on    TEXT
    )""",
    "CREATE INDEX institutions_by_county ON institutions(county_code)",
    "CREATE INDEX institutions_by_name ON institutions(name_key)",
    """CREATE TABLE institution_grams (
        gram           TEXT NOT NULL,
        institution_id INTEGER NOT NULL,
        PRIMARY KEY (gram, institution_id)
    ) WITHOUT ROWID""",
    # かかりつけ医機能報告: one per institution and fiscal year; approved by the
    # county, then the prefecture, either of which may return it with a reason.
    """CREATE TABLE fd_reports (
        id             INTEGER PRIMARY KEY,
        institution_id INTEGER NOT NULL REFERENCES institutions(id),
        fiscal_year    INTEGER NOT NULL,
        submitted_on   TEXT NOT NULL,
        stage          TEXT NOT NULL CHECK (stage IN ('county', 'prefecture', 'done')),
        state          TEXT NOT NULL CHECK (state IN ('in_review', 'returned', 'approved')),
        UNIQUE (institution_id, fiscal_year)
    )""",
    """CREATE TABLE fd_report_events (
        report_id   INTEGER NOT NULL REFERENCES fd_reports(id),
        seq         INTEGER NOT NULL,
        happened_on TEXT NOT NULL,
        stage       TEXT NOT NULL CHECK (stage IN ('institution', 'county', 'prefecture')),
        action      TEXT NOT NULL CHECK (action IN ('submitted', 'approved', 'returned', 'resubmitted')),
        reason      TEXT,
        PRIMARY KEY (report_id, seq)
    ) WITHOUT ROWID""",
]


_0004_IMPORTS = [
    # What the vendor's institution master carries beyond what the lookups needed so far.
    "ALTER TABLE institutions ADD COLUMN kind TEXT CHECK (kind IN ('hospital', 'clinic'))",
    "ALTER TABLE institutions ADD COLUMN opened_on TEXT",
    "ALTER TABLE institutions ADD COLUMN closed_on TEXT",
    "ALTER TABLE institutions ADD COLUMN delivered_in TEXT",  # YYYY-MM of the master delivery
    # A digest of the imported row, as for members: equal hash, nothing to write.
    "ALTER TABLE institutions ADD COLUMN row_hash TEXT",
    "ALTER TABLE applications ADD COLUMN row_hash TEXT",
    "ALTER TABLE fd_reports ADD COLUMN row_hash TEXT",
]


_0005_GRAMS_BY_PREFECTURE = [
    # A fuzzy institution search reads the asker's prefecture in full and the rest of the country
    # through its rarest grams only (records/name_search.py); the prefecture beside each gram lets the
    # index seek do both without visiting the institutions. Filled from the rows already there.
    "ALTER TABLE institution_grams ADD COLUMN prefecture_code TEXT",
    """UPDATE institution_grams SET prefecture_code =
           (SELECT prefecture_code FROM institutions WHERE id = institution_id)""",
    "CREATE INDEX institution_grams_by_prefecture ON institution_grams(gram, prefecture_code, institution_id)",
]


_0006_DELIVERIES = [
    # The latest master delivery (max of 配信月) dates a waiting clinic's window (records/leadtime.py).
    "CREATE INDEX institutions_by_delivery ON institutions(delivered_in)",
]


_0001_PREFECTURES = [
    # The 47 prefectural associations are fixed facts, so the schema carries them; written out as
    # shipped (a later change of records/associations.py is a new migration, not an edit of this one).
    "INSERT INTO associations (code, level, name, prefecture_code) VALUES "
    "('01', 'prefecture', '北海道', '01'), "
    "('02', 'prefecture', '青森県', '02'), "
    "('03', 'prefecture', '岩手県', '03'), "
    "('04', 'prefecture', '宮城県', '04'), "
    "('05', 'prefecture', '秋田県', '05'), "
    "('06', 'prefecture', '山形県', '06'), "
    "('07', 'prefecture', '福島県', '07'), "
    "('08', 'prefecture', '茨城県', '08'), "
    "('09', 'prefecture', '栃木県', '09'), "
    "('10', 'prefecture', '群馬県', '10'), "
    "('11', 'prefecture', '埼玉県', '11'), "
    "('12', 'prefecture', '千葉県', '12'), "
    "('13', 'prefecture', '東京都', '13'), "
    "('14', 'prefecture', '神奈川県', '14'), "
    "('15', 'prefecture', '新潟県', '15'), "
    "('16', 'prefecture', '富山県', '16'), "
    "('17', 'prefecture', '石川県', '17'), "
    "('18', 'prefecture', '福井県', '18'), "
    "('19', 'prefecture', '山梨県', '19'), "
    "('20', 'prefecture', '長野県', '20'), "
    "('21', 'prefecture', '岐阜県', '21'), "
    "('22', 'prefecture', '静岡県', '22'), "
    "('23', 'prefecture', '愛知県', '23'), "
    "('24', 'prefecture', '三重県', '24'), "
    "('25', 'prefecture', '滋賀県', '25'), "
    "('26', 'prefecture', '京都府', '26'), "
    "('27', 'prefecture', '大阪府', '27'), "
    "('28', 'prefecture', '兵庫県', '28'), "
    "('29', 'prefecture', '奈良県', '29'), "
    "('30', 'prefecture', '和歌山県', '30'), "
    "('31', 'prefecture', '鳥取県', '31'), "
    "('32', 'prefecture', '島根県', '32'), "
    "('33', 'prefecture', '岡山県', '33'), "
    "('34', 'prefecture', '広島県', '34'), "
    "('35', 'prefecture', '山口県', '35'), "
    "('36', 'prefecture', '徳島県', '36'), "
    "('37', 'prefecture', '香川県', '37'), "
    "('38', 'prefecture', '愛媛県', '38'), "
    "('39', 'prefecture', '高知県', '39'), "
    "('40', 'prefecture', '福岡県', '40'), "
    "('41', 'prefecture', '佐賀県', '41'), "
    "('42', 'prefecture', '長崎県', '42'), "
    "('43', 'prefecture', '熊本県', '43'), "
    "('44', 'prefecture', '大分県', '44'), "
    "('45', 'prefecture', '宮崎県', '45'), "
    "('46', 'prefecture', '鹿児島県', '46'), "
    "('47', 'prefecture', '沖縄県', '47')",
]


_0007_GRAMS_KEYED_BY_PREFECTURE = [
    # The grams keyed by (gram, prefecture, institution), the order every search reads them in
    # (records/name_search.py), instead of a table keyed by (gram, institution) plus an index carrying
    # the same three columns: one b-tree to write instead of two, which halves what an import writes
    # for the grams (about 6 per institution, 1.2 million rows at national scale). A gram without a
    # prefecture belonged to no institution when 0005 filled them in, so it is not copied.
    """CREATE TABLE institution_grams_rekeyed (
        gram            TEXT NOT NULL,
        prefecture_code TEXT NOT NULL,
        institution_id  INTEGER NOT NULL,
        PRIMARY KEY (gram, prefecture_code, institution_id)
    ) WITHOUT ROWID""",
    """INSERT INTO institution_grams_rekeyed (gram, prefecture_code, institution_id)
       SELECT gram, prefecture_code, institution_id FROM institution_grams WHERE prefecture_code IS NOT NULL""",
    "DROP TABLE institution_grams",
    "ALTER TABLE institution_grams_rekeyed RENAME TO institution_grams",
]


_0008_STEPS_IN_ROWS = [
    # An application's and a report's history moves into dated columns of its own row, the cells its
    # file carries (提出日, 郡市区等医師会承認日, 差戻し日, …); the lookups order them into a history
    # (records/steps.py events_from_steps). A difference file's stage change then rewrites one row
    # instead of a row and its events in a second b-tree, which was a third of what it wrote. Each
    # column takes the date of the step's latest event, 差戻し元 and the reason the latest return's:
    # exactly what steps_from_events folds, so every history written so far (always
    # events_from_steps of such cells) reads back the same.
    "ALTER TABLE applications ADD COLUMN county_approved_on TEXT",
    "ALTER TABLE applications ADD COLUMN prefecture_approved_on TEXT",
    "ALTER TABLE applications ADD COLUMN returned_on TEXT",
    "ALTER TABLE applications ADD COLUMN returned_by TEXT CHECK (returned_by IN ('county', 'prefecture', 'jma'))",
    "ALTER TABLE applications ADD COLUMN return_reason TEXT",
    "ALTER TABLE applications ADD COLUMN resubmitted_on TEXT",
    "ALTER TABLE applications ADD COLUMN jma_completed_on TEXT",
    "ALTER TABLE applications ADD COLUMN withdrawn_on TEXT",
    """UPDATE applications SET
        county_approved_on = (SELECT happened_on FROM application_events WHERE application_id = applications.id
                              AND action = 'approved' AND stage = 'county' ORDER BY seq DESC LIMIT 1),
        prefecture_approved_on = (SELECT happened_on FROM application_events WHERE application_id = applications.id
                                  AND action = 'approved' AND stage = 'prefecture' ORDER BY seq DESC LIMIT 1),
        returned_on = (SELECT happened_on FROM application_events WHERE application_id = applications.id
                       AND action = 'returned' ORDER BY seq DESC LIMIT 1),
        returned_by = (SELECT stage FROM application_events WHERE application_id = applications.id
                       AND action = 'returned' ORDER BY seq DESC LIMIT 1),
        return_reason = (SELECT reason FROM application_events WHERE application_id = applications.id
                         AND action = 'returned' ORDER BY seq DESC LIMIT 1),
        resubmitted_on = (SELECT happened_on FROM application_events WHERE application_id = applications.id
                          AND action = 'resubmitted' AND stage = 'applicant' ORDER BY seq DESC LIMIT 1),
        jma_completed_on = (SELECT happened_on FROM application_events WHERE application_id = applications.id
                            AND action = 'completed' AND stage = 'jma' ORDER BY seq DESC LIMIT 1),
        withdrawn_on = (SELECT happened_on FROM application_events WHERE application_id = applications.id
                        AND action = 'withdrawn' AND stage = 'applicant' ORDER BY seq DESC LIMIT 1)""",
    "DROP TABLE application_events",
    "ALTER TABLE fd_reports ADD COLUMN county_approved_on TEXT",
    "ALTER TABLE fd_reports ADD COLUMN prefecture_approved_on TEXT",
    "ALTER TABLE fd_reports ADD COLUMN returned_on TEXT",
    "ALTER TABLE fd_reports ADD COLUMN returned_by TEXT CHECK (returned_by IN ('county', 'prefecture'))",
    "ALTER TABLE fd_reports ADD COLUMN return_reason TEXT",
    "ALTER TABLE fd_reports ADD COLUMN resubmitted_on TEXT",
    """UPDATE fd_reports SET
        county_approved_on = (SELECT happened_on FROM fd_report_events WHERE report_id = fd_reports.id
                              AND action = 'approved' AND stage = 'county' ORDER BY seq DESC LIMIT 1),
        prefecture_approved_on = (SELECT happened_on FROM fd_report_events WHERE report_id = fd_reports.id
                                  AND action = 'approved' AND stage = 'prefecture' ORDER BY seq DESC LIMIT 1),
        returned_on = (SELECT happened_on FROM fd_report_events WHERE report_id = fd_reports.id
                       AND action = 'returned' ORDER BY seq DESC LIMIT 1),
        returned_by = (SELECT stage FROM fd_report_events WHERE report_id = fd_reports.id
                       AND action = 'returned' ORDER BY seq DESC LIMIT 1),
        return_reason = (SELECT reason FROM fd_report_events WHERE report_id = fd_reports.id
                         AND action = 'returned' ORDER BY seq DESC LIMIT 1),
        resubmitted_on = (SELECT happened_on FROM fd_report_events WHERE report_id = fd_reports.id
                          AND action = 'resubmitted' AND stage = 'institution' ORDER BY seq DESC LIMIT 1)""",
    "DROP TABLE fd_report_events",
]


MIGRATIONS: list[Migration] = [
    ("0001_initial", _0001_INITIAL + _0001_PREFECTURES),
    ("0002_applications", _0002_APPLICATIONS),
    ("0003_institutions_and_reports", _0003_INSTITUTIONS),
    ("0004_imports", _0004_IMPORTS),
    ("0005_institution_grams_by_prefecture", _0005_GRAMS_BY_PREFECTURE),
    ("0006_institutions_by_delivery", _0006_DELIVERIES),
    ("0007_institution_grams_keyed_by_prefecture", _0007_GRAMS_KEYED_BY_PREFECTURE),
    ("0008_steps_in_rows", _0008_STEPS_IN_ROWS),
]


def connect_writer(path: Path | str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open the records database for its one writer (sync or demo), migrated and in WAL.

    WAL lets the help desk keep reading the previous copy while an import runs, and a
    killed import leaves only uncommitted WAL frames, which readers ignore.
    Transactions are explicit (isolation_level=None) so each job decides its own.
    """
    conn = connect(path)
    if busy_timeout_ms != BUSY_TIMEOUT_MS:  # an import asked to give up sooner (SyncBusy)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    apply_migrations(conn, MIGRATIONS)
    return conn


# Migration 0008 is applied by the next import (the help desk only reads this database), so an upgraded
# help desk may meet a copy whose histories are still in application_events and fd_report_events.
_STEPS_IN_ROWS = "SELECT 1 FROM pragma_table_info('applications') WHERE name = 'returned_on'"


def steps_in_rows(conn: sqlite3.Connection) -> bool:
    """Whether the applications' and reports' dated steps are columns of their rows (0008 applied)."""
    return conn.execute(_STEPS_IN_ROWS).fetchone() is not None


_META_GET = "SELECT value FROM meta WHERE key = :key"
_META_SET = ("INSERT INTO meta (key, value) VALUES (:key, :value) "
             "ON CONFLICT(key) DO UPDATE SET value = excluded.value")

DEMO_KEY = "demo"
DEMO_LABEL = "デモデータ（架空）"


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute(_META_GET, {"key": key}).fetchone()
    return row[0] if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(_META_SET, {"key": key, "value": value})
