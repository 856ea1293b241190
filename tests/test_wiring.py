"""One composition root: helpdesk/services.py builds the core with its desk for every process (the CLI and
the bot as well as the web app, none of them needing Flask), nothing is finished later from outside, no
module re-exports another's names, and no import cycle hides inside a function."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import NOW, ROOT

PACKAGES = ("handlers", "helpdesk", "bot", "kb", "records", "storage")
#: Where no module may keep a name only for others to import (records/ and kb/ are being split by
#: others at the same time; their re-exports are theirs to remove).
NO_RE_EXPORTS = ("handlers", "helpdesk", "bot")
#: Where no module may keep a name only for others to import (records/ and kb/ are being split by
#: others at the same time; their re-exports are theirs to remove).
NO_RE_EXPORTS = ("handlers", "helpdesk", "bot")

#: A process that cannot import Flask, Telegram or click builds the core and the desk, hands a
#: conversation over, and an agent answers it: the desk is not a part of the web app.
WITHOUT_ADAPTERS = """
import sys
for name in ("flask", "werkzeug", "telegram", "click"):
    sys.modules[name] = None  # importing any of them now fails
from bot import Asker
from bot.desk.actions import Agent
from helpdesk.services import build_services
from helpdesk.settings import load_settings

services = build_services(sys.argv[1], load_settings(sys.argv[1], {"NOW": sys.argv[2]}))
core, desk = services.core(), services.desk()
assert core.desk is desk.handoff and desk.desk.handoff is desk.handoff and desk.tickets is desk.handoff.tickets
cid = core.open_conversation("web", Asker()).conversation.id
created = desk.handoff.create(cid, Asker(), "web", note="会費の口座を変えたい")
desk.desk.reply(created.ticket.number, Agent("yamada", "運営事務局 山田"), "担当の山田です。")
print(created.ticket.number, core.store.state(cid), desk.tickets.get(created.ticket.number).state,
      type(desk.agents).__name__)
services.close()
"""


def test_a_process_without_flask_builds_the_core_with_its_desk(tmp_path):
    done = subprocess.run([sys.executable, "-c", WITHOUT_ADAPTERS, str(tmp_path / "instance"), NOW], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1001", "with_agent", "pending", "AgentAccounts"]


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported(module: str, path: Path, node: ast.Import | ast.ImportFrom, known) -> list[str]:
    """The project modules an import statement reads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]) if node.level else node.module
    base = base.rstrip(".")
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            if f"{base}.{a.name}" in known or base in known]


def import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports, at its top or inside a function alike."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name].update(t for t in imported(name, path, node, known) if t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_hides_inside_a_function():
    """A cycle broken only by importing inside a function is still a cycle: the shared piece belongs
    where both modules can import it at their top."""
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def unused_imports(path: Path) -> list[str]:
    """Names a module imports and never uses: kept only for others to import from it (a re-export)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", None) != "__future__":
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node.lineno
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    # A name in a string annotation (`from __future__ import annotations`) or in __all__ is used, too.
    text = " ".join(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return sorted(n for n in names if n not in used and n not in text.replace(".", " ").split())


def test_no_module_re_exports_names_of_another():
    """Importers use the module that defines a name (package __init__ files are the packages' faces)."""
    found = {name: unused_imports(path) for name, path in modules().items()
             if path.name != "__init__.py" and name.split(".")[0] in NO_RE_EXPORTS}
    assert {name: names for name, names in found.items() if names} == {}


def subscribed_doctor(instance, member: str, chat: int) -> None:
    """A Telegram chat linked to `member` that asked for notifications (as /link and /notify on leave it)."""
    from datetime import datetime

    from bot import Store
    from bot.accounts.linking import LinkCodes
    from bot.messaging.outbox import Outbox

    store = Store(instance.helpdesk_db)
    try:
        now = datetime.fromisoformat(NOW)
        LinkCodes(store).consume(LinkCodes(store).issue(member, "test", now).code, "telegram", str(chat), now)
        Outbox(store, "telegram").set_notify(chat, chat, True, NOW)
    finally:
        store.close()


def notification_texts(instance) -> list[str]:
    import json
    import sqlite3

    conn = sqlite3.connect(instance.helpdesk_db)
    try:
        return [json.loads(p)["text"] for (p,) in conn.execute("SELECT payload FROM outbox WHERE kind = 'notification'")]
    finally:
        conn.close()


def test_a_sync_notifies_however_its_command_is_reached(tmp_path):
    """The command imported on its own (not through the `helpdesk` group) calls the notification step
    too: nothing outside the command finishes it."""
    from click.testing import CliRunner

    from handlers.cli.records import sync_members
    from helpdesk.instance import Instance
    from records.demo import generate_demo
    from tests.conftest import member_change_file

    instance = Instance.at(tmp_path / "instance")
    generate_demo(instance.records_db, members=10)
    subscribed_doctor(instance, "1300002", 3001)  # 佐藤 花子: 入会手続中
    diff = member_change_file(instance.records_db, "1300002", tmp_path / "diff.csv", status="active")
    result = CliRunner().invoke(sync_members, ["--diff", str(diff)], obj=instance)
    assert result.exit_code == 0, result.output
    assert [t.split("\n")[0] for t in notification_texts(instance)] == ["会員状態が「入会手続中」から「在籍」に変わりました。"]


def test_the_commands_that_notify_say_so_and_are_not_rewritten():
    from click.testing import CliRunner

    from handlers.cli.main import cli

    index = cli.commands["index"]
    # click's pass_obj around the function of handlers/cli/main.py, not a wrapper put around it from elsewhere
    assert Path(index.callback.__wrapped__.__code__.co_filename) == ROOT / "handlers" / "cli" / "main.py"
    assert "リリースノートのお知らせ" in CliRunner().invoke(cli, ["index", "--help"]).output
    for name in ("sync-members", "sync-institutions", "sync-applications", "sync-reports"):
        assert "通知を希望して" in CliRunner().invoke(cli, [name, "--help"]).output, name
    for name, path in modules().items():
        assert ".callback = " not in path.read_text(encoding="utf-8"), name


IMPORT_ALL = """
import importlib, os, sys
before = dict(os.environ)
for name in sys.argv[1:]:
    importlib.import_module(name)
print(sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)))
"""


def test_importing_any_module_changes_nothing_outside_it():
    """No import-time side effects: importing every module of the project leaves the environment as it was
    (a setting the library reads is set by the function that starts the bot)."""
    env = {k: v for k, v in os.environ.items() if k != "PTB_TIMEDELTA"}
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL, *sorted(modules())], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
