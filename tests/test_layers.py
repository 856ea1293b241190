"""The layers hold: import-linter's contracts in pyproject.toml (handlers > helpdesk > bot > kb | records
> storage, and no web, Telegram, CLI or server library below handlers), checked on every test run."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import ROOT

#: Libraries of the adapters: only `handlers` may import them.
ADAPTER_LIBRARIES = {"flask", "werkzeug", "telegram", "click", "aiohttp", "gunicorn", "waitress", "tornado"}


def test_the_contracts_name_every_layer_and_every_adapter_library():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers, forbidden = config["contracts"]
    assert layers["layers"] == ["handlers", "helpdesk", "bot", "kb | records", "storage"]
    assert forbidden["source_modules"] == ["helpdesk", "bot", "kb", "records", "storage"]
    assert ADAPTER_LIBRARIES <= set(forbidden["forbidden_modules"])
    assert "ignore_imports" not in layers and "ignore_imports" not in forbidden


def test_lint_imports_keeps_every_contract():
    # import-linter comes with requirements-test.lock; LINT_IMPORTS names another copy of it.
    lint_imports = Path(os.environ.get("LINT_IMPORTS", Path(sys.executable).parent / "lint-imports"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's packages, not another checkout's
    done = subprocess.run([str(lint_imports), "--no-cache", "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout
