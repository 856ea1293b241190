"""The databases' migrations (helpdesk.sqlite: bot/store/migrations.py; records.sqlite: records/schema.py;
audit.sqlite: records/access.py): frozen, and agreeing with the declared states and prefectures.

kb.sqlite has none: the index is disposable and rebuilt from the articles (kb/indexer.py).
A shipped migration is never edited (the `migrations` table records only names, so an existing
database would never run the new text), a new database and an upgraded one end with the same schema,
and the states the schema's CHECKs allow are exactly those declared in bot/conversation/state.py and bot/desk/tickets.py.
Adding a state therefore fails here until a new migration widens the CHECK.
"""
from __future__ import annotations

import ast
import hashlib
import re
from contextlib import closing
from pathlib import Path

import pytest

import bot.store.migrations
import records.schema
from bot.conversation import state
from bot.desk import tickets
from bot.store.migrations import MIGRATIONS
from records.access import AUDIT_MIGRATIONS
from records.associations import PREFECTURES
from storage.sqlite import apply_migrations, connect

LISTS = {"helpdesk.sqlite": MIGRATIONS, "records.sqlite": records.schema.MIGRATIONS, "audit.sqlite": AUDIT_MIGRATIONS}

#: SHA-256 of each shipped migration's statements (joined by NUL), as existing databases ran them, per
#: database file. A migration added later belongs here once it has shipped.
SHIPPED = {
    "helpdesk.sqlite": {
        "0001_initial": "f8a473d61dfdeb49b788f031386b8e87e1a0d0a35f82d73622e02c4981a9eb8c",
        "0002_staff_accounts": "d9e023c167675234030201bd04d80c32e9f0051ed60c3b13495c20a661c85220",
        "0003_link_codes": "45e8288814c4002dad10c218fa6cea788f291f93691f5cf02f8cb2819f04e32e",
        "0004_redacted_transcripts": "45b95a23d0cf0002d205411c8e81be8681827930b009ee9e09a533bd0e3dc0bc",
        "0005_conversation_state": "fa00bbbdeb1d446e3bd60cd51678e1470c7c7f3ac677f1813320c140408e4c4b",
        "0006_agent_messages": "70297a45a590bf07636538766347793fb03c3de7c3062cfaccad5e84ae794d7e",
        "0007_chat_identities": "27041a77ee73d7fca6fc5d95010044c240c0fa80a314b7121e10f83a16d98c7d",
        "0008_staff_sessions": "68471d6b6247f661633dd0f659977797564d04cbe9e199bec042cab93cb4d4d0",
        "0009_outbox": "9583bc0e38f7dcef5f40ea72ef84bdd34bd58e659ae6e106374996cb0bd92266",
        "0010_tickets": "39b02e990ee7fe8ae6c2ce2d9d69a11275bc3c339246225bbfad64e1d9bf0bd7",
        "0011_ticket_filters": "eaec585b166541cbc952b349d515d99b3d4b409c31dc16474af050b76121d55d",
        "0012_agent_sessions": "8c83079ce11004006c50dcfab8da6f0677d4b5968d574705df84a05d272b7bd0",
        "0013_ticket_viewers": "30c6ce47b95f356e8409c103b36ce2e5afdeabdf28d07071820f2875f44705e8",
    },
    "records.sqlite": {
        "0001_initial": "a69f759402a73355482a7cd4d7218c6e4469929df3da400da87c5ce4f714161b",
        "0002_applications": "c796fa6a7648b9756270183ad4e09a15d1dfd6f1d7458f1f3e0fec1a45eb5d24",
        "0003_institutions_and_reports": "6b21f11d0dd1086192f1eab8128a45a7df1dcd46df82303882b0d10108ba301f",
        "0004_imports": "2b1a84d70ac2d8d4bdf8a51f9eafffdbec695935a2f428b3753ca5f62a6f06b4",
        "0005_institution_grams_by_prefecture": "cb9498559485b9349331edd9954b5b7f4d7b5a52494c20730886166d162a16b7",
        "0006_institutions_by_delivery": "b166f417664363b4de2d37f0e8f3a9696da1072d22ce1d4bc0e9597779dbf360",
        "0007_institution_grams_keyed_by_prefecture":
            "3f28050dfcf688976b93d396c0a94097a11d69b283167e28db70f93820a8433a",
    },
    "audit.sqlite": {
        "0001_access_log": "c6b23c3feb7c8d2c2890be3ebaae75b9fa7393e04eb51bbcf8b73aa4c8307b76",
    },
}


def digest(statements) -> str:
    return hashlib.sha256("\0".join(statements).encode()).hexdigest()


def schema(path: Path) -> list[tuple]:
    with closing(connect(path)) as conn:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                            "WHERE name != 'migrations' ORDER BY type, name").fetchall()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fresh") / "helpdesk.sqlite"
    with closing(connect(path)) as conn:
        apply_migrations(conn, MIGRATIONS)
    return path


def sql_of(path: Path, name: str) -> str:
    with closing(connect(path)) as conn:
        return conn.execute("SELECT sql FROM sqlite_master WHERE name = :name", {"name": name}).fetchone()[0]


def listed(sql: str, column: str) -> list[str]:
    """The values of `column IN ('a', 'b', …)` in a CHECK or a partial index's WHERE."""
    found = re.findall(rf"\b{column} IN \(([^)]*)\)", sql)
    assert len(found) == 1, sql
    return [v.strip().strip("'") for v in found[0].split(",")]


@pytest.mark.parametrize("database", sorted(LISTS))
def test_shipped_migrations_are_unchanged(database):
    names = [name for name, _statements in LISTS[database]]
    assert names == sorted(set(names)), "migrations run in the order of their names, each once"
    assert set(SHIPPED[database]) <= set(names)
    changed = [name for name, statements in LISTS[database]
               if name in SHIPPED[database] and digest(statements) != SHIPPED[database][name]]
    assert changed == [], "a shipped migration was edited: add a new one instead"


@pytest.mark.parametrize("module", [bot.store.migrations, records.schema], ids=lambda m: m.__name__)
def test_the_lists_are_built_from_nothing_that_can_change(module):
    """Literal SQL only: no state list, no prefecture table, no helper whose output may change after a
    database ran it (records/schema.py also opens the database, so its calls outside the lists are
    allowed; the lists themselves are plain literals)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    lists = [node.value for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
             and isinstance(node.value, ast.List)]
    assert lists and not [n for v in lists for n in ast.walk(v) if isinstance(n, (ast.JoinedStr, ast.Call))]
    project = {("." * n.level) + (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               and (n.level or n.module.split(".")[0] in {"bot", "records", "kb", "helpdesk", "handlers", "storage"})}
    assert project <= {"storage.sqlite"}, "the SQL must not depend on code that may change"


def test_the_prefectures_in_a_new_records_database_are_the_declared_ones(tmp_path):
    """records/associations.py and migration 0001's frozen rows agree; changing a prefecture fails here
    until a new migration changes the rows of existing databases too."""
    conn = records.schema.connect_writer(tmp_path / "records.sqlite")
    with closing(conn):
        rows = conn.execute("SELECT code, name FROM associations WHERE level = 'prefecture' ORDER BY code").fetchall()
    assert rows == [(code, name) for code, name, _population, _cities in PREFECTURES]


def test_conversation_state_check_lists_exactly_the_declared_states(fresh):
    assert sorted(listed(sql_of(fresh, "conversations"), "state")) == sorted(state.STATES)


def test_ticket_state_check_lists_exactly_the_declared_states(fresh):
    assert sorted(listed(sql_of(fresh, "tickets"), "state")) == sorted(tickets.STATES)
    # One unfinished ticket per conversation: "unfinished" is the declared active states.
    assert sorted(listed(sql_of(fresh, "tickets_one_active"), "state")) == sorted(tickets.ACTIVE_STATES)


def test_a_database_upgraded_step_by_step_has_the_schema_of_a_new_one(fresh, tmp_path):
    """Every older version of the database (the first k migrations, then closed) upgraded by today's
    code ends with exactly the schema that a new database gets."""
    want = schema(fresh)
    for k in range(1, len(MIGRATIONS)):
        path = tmp_path / f"v{k}.sqlite"
        with closing(connect(path)) as conn:
            assert apply_migrations(conn, MIGRATIONS[:k]) == [name for name, _s in MIGRATIONS[:k]]
        with closing(connect(path)) as conn:
            assert apply_migrations(conn, MIGRATIONS) == [name for name, _s in MIGRATIONS[k:]]
        assert schema(path) == want, f"upgraded from {MIGRATIONS[k - 1][0]}"
