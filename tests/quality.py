"""The dev sets the quality tests read (../shared/eval, beside the repository, not shipped with it).

A developer without them gets a skip that says what was not checked. Under CI (`CI` set, as every CI
service sets it) or `make test` (HELPDESK_TEST_REQUIRE_EVAL=1) the same absence fails the test: a
quality bar that silently stops being measured is worse than a red build.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("HELPDESK_TEST_REQUIRE_EVAL"))


def eval_data(*names: str) -> Path | list[Path]:
    """The path (or paths) of dev-set files under EVAL; skip without them, or fail under CI."""
    paths = [EVAL / name for name in names]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        message = f"{', '.join(missing)} is not present: this quality bar is not checked"
        if required():
            pytest.fail(f"{message} (CI or `make test`: the dev sets must be there)", pytrace=False)
        pytest.skip(message)
    return paths[0] if len(paths) == 1 else paths
