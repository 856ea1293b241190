"""The suite in parts: marks given by the fixtures a test uses, processes that refuse an unmarked test,
`make test-fast` leaving the marked parts out, and quality tests that fail under CI without their data."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import quality
from tests.conftest import ROOT, ServerProcess
from tests.marks import mark_by_fixtures


class Item:
    """What mark_by_fixtures reads of a collected test."""

    def __init__(self, *fixturenames):
        self.fixturenames, self.marks = list(fixturenames), []

    def add_marker(self, name):
        self.marks.append(name)


@pytest.mark.parametrize("fixtures, marks", [
    (("tmp_path", "live_server"), ["server"]),
    (("live_server_factory", "browser"), ["browser", "server"]),
    (("fake", "bot", "demo_instance"), ["telegram"]),
    (("tmp_path", "instance", "client"), []),
])
def test_a_test_is_marked_by_the_fixtures_it_uses(fixtures, marks):
    item = Item(*fixtures)
    mark_by_fixtures(item)
    assert item.marks == marks


def test_the_collected_suite_carries_the_marks(request):
    by_name = {item.nodeid: {m.name for m in item.iter_markers()} for item in request.session.items}
    assert not {"server", "browser", "telegram", "slow"} & by_name[request.node.nodeid]
    expected = {"tests/test_api.py::test_a_whole_conversation": "server",  # through live_server
                "tests/test_desk_server.py::test_two_agents_replying_at_once_lose_nothing_and_one_claims": "slow",
                "tests/test_telegram.py::test_start_registers_japanese_commands_and_greets": "telegram"}
    for nodeid, mark in expected.items():  # those collected in this run
        assert mark in by_name.get(nodeid, {mark}), nodeid


def test_a_server_process_in_an_unmarked_test_is_refused(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="mark it @pytest.mark.server"):
        ServerProcess(tmp_path).start()


def test_make_test_fast_leaves_out_every_marked_part_and_make_test_requires_the_dev_sets():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    fast = re.search(r"^test-fast:.*\n\t(.+)$", makefile, re.M).group(1)
    assert all(f"not {m}" in fast for m in ("server", "browser", "telegram", "slow")), fast
    whole = re.search(r"^test:.*\n\t(.+)$", makefile, re.M).group(1)
    assert "HELPDESK_TEST_REQUIRE_EVAL=1" in whole and " -m " not in whole, whole


def test_missing_dev_sets_skip_for_a_developer_and_fail_under_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(quality, "EVAL", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("HELPDESK_TEST_REQUIRE_EVAL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is not present"):
        quality.eval_data("mamis_dev.jsonl")
    for name, value in (("CI", "true"), ("HELPDESK_TEST_REQUIRE_EVAL", "1")):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(pytest.fail.Exception, match="mamis_dev.jsonl is not present"):
                quality.eval_data("mamis_dev.jsonl")
    (tmp_path / "mamis_dev.jsonl").write_text("{}\n", encoding="utf-8")
    assert quality.eval_data("mamis_dev.jsonl") == Path(tmp_path / "mamis_dev.jsonl")


def test_the_url_serve_prints_is_read_back():
    """Servers started on port 0 (ServerProcess, the benchmarks, the screenshots) learn their port from
    this line."""
    from handlers.server.command import STARTED, started_url

    line = f"{STARTED}http://127.0.0.1:40123/ （gunicorn、ワーカー 2、スレッド 4。終了は Ctrl+C）\n"
    assert started_url('{"level": "WARNING"}\n' + line) == "http://127.0.0.1:40123"
    assert started_url(f"{STARTED}http://[::1]:8000/ （waitress）") == "http://[::1]:8000"
    assert started_url('{"level": "INFO", "event": "booting"}\n') is None
