"""What ships is what runs: the wheel, built from the tracked files and installed into a fresh
virtualenv, runs the container's entrypoint from a folder with no source tree.

Nothing is downloaded: the wheel is built with this environment's setuptools (--no-build-isolation),
installed without dependencies, and the new virtualenv reads the dependencies from this environment's
site-packages through a .pth line (which, unlike this environment's own start-up, does not run the
editable install's hook: the source tree stays out of sight). The entrypoint is deploy/docker-entrypoint.sh,
as the image runs it: index, then serve.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from handlers.server.command import started_url
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # builds the wheel and a virtualenv

WANTED = ["handlers/templates/desk/login.html", "handlers/static/desk/queue.js", "handlers/static/frame.js",
          "kb/articles/contact-desk.md", "kb/synonyms.txt", "release_notes/2026-01-mamis-letter-15.md"]


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the wheel, the fresh virtualenv's bin folder, the environment to run it in)."""
    import setuptools

    assert int(setuptools.__version__.split(".")[0]) >= 77, "setuptools >= 77 が要ります（make setup が入れます）"
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # the tracked files only, as a clean clone has them; the build writes here
    tracked = _run("git", "ls-files", "-z", cwd=ROOT).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(tmp / "dist"), str(source))
    wheel = next((tmp / "dist").glob("mamis_helpdesk-*.whl"))
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    site = Path(_run(str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .stdout.strip())
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "dependencies.pth").write_text("".join(f"{p}\n" for p in ours), encoding="utf-8")
    _run(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-deps",
         "--no-index", str(wheel))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROMETHEUS_MULTIPROC_DIR")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return wheel, venv / "bin", env


def test_the_wheel_carries_what_the_program_reads(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [n for n in WANTED if n not in names] == []
    shipped = {p.relative_to(ROOT).as_posix() for folder in ("kb/articles", "release_notes", "handlers/templates",
                                                             "handlers/static") for p in (ROOT / folder).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert shipped <= names


@pytest.mark.server
def test_the_entrypoint_indexes_and_serves_from_the_installed_wheel(installed, tmp_path):
    _, bin_folder, env = installed
    elsewhere = tmp_path / "elsewhere"  # no source tree here or above
    elsewhere.mkdir()
    # Port 0: the server binds a port no other process can take meanwhile and prints its URL.
    env = {**env, "INSTANCE": str(tmp_path / "instance"), "HOST": "127.0.0.1", "PORT": "0", "WORKERS": "1"}
    log = (tmp_path / "entrypoint.log").open("w+")
    proc = subprocess.Popen(["sh", str(ROOT / "deploy" / "docker-entrypoint.sh"), "serve"], cwd=elsewhere, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "entrypoint.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "entrypoint.log").read_text()
            started = started_url((tmp_path / "entrypoint.log").read_text())
            try:
                if started and httpx.get(started + "/healthz", timeout=1).status_code == 200:
                    url = started
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        output = (tmp_path / "entrypoint.log").read_text()
        assert "索引: 追加・更新 11 件、変更なし 0 件、削除 0 件" in output, output
        assert "単語ベクトル: あり（ja_ginza-5.3.0" in output, output
        # Every article was read from the installed package, none from a source tree.
        where = _run(str(bin_folder / "python"), "-c", "import helpdesk.services as s; print(s.PROJECT_ROOT)",
                     cwd=elsewhere, env=env).stdout.strip()
        assert where.endswith("site-packages") and not where.startswith(str(ROOT)), where

        login = httpx.get(url + "/desk/login")
        assert login.status_code == 200 and "ログイン" in login.text
        script = httpx.get(url + "/static/desk/queue.js")
        assert script.status_code == 200 and script.text == (ROOT / "handlers/static/desk/queue.js").read_text()
        ready = httpx.get(url + "/readyz")
        # Ready to chat (no member data here: degraded, not failing), with the word vectors.
        assert (ready.status_code, ready.json()["status"], ready.json()["degraded"]) == (
            200, "degraded", ["member_data", "institutions_data", "applications_data", "reports_data"])
        assert ready.json()["checks"]["vectors"]["index"] == "ja_ginza-5.3.0"

        conversation = httpx.post(url + "/api/conversations", json={}).json()
        answer = httpx.post(url + f"/api/conversations/{conversation['id']}/messages",
                            json={"text": "医療機関マスタはいつ更新されますか"},
                            headers={"Authorization": f"Bearer {conversation['token']}"})
        assert answer.status_code == 201, answer.text
        reply = answer.json()["reply"]
        assert reply["kind"] == "answer"
        assert reply["sources"][0]["slug"] == "institution-master-updates"
        assert httpx.get(url + reply["sources"][0]["url"]).status_code == 200
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        log.close()
