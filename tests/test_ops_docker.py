"""No Docker daemon runs here, so the Dockerfile is checked against the set-up it must mirror: it
installs the package the way the Makefile does, builds the index and serves with the same commands
as `make run`, runs as a non-root user with the instance folder as a volume, and checks /healthz."""
from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
ENTRYPOINT = (ROOT / "deploy" / "docker-entrypoint.sh").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def make_run_commands() -> list[str]:
    """The helpdesk subcommands of `make run`, in order (index, demo-data, demo-accounts, serve)."""
    body = MAKEFILE.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"\$\(HD\) --instance \$\(INSTANCE\) ([a-z-]+)", body)


def test_the_entrypoint_runs_the_steps_of_make_run_in_order():
    steps = make_run_commands()
    assert steps[0] == "index" and steps[-1] == "serve", steps
    serve_branch = ENTRYPOINT.split("serve)", 1)[1].split(";;", 1)[0]
    found = re.findall(r'helpdesk --instance "\$INSTANCE" ([a-z-]+)', serve_branch)
    assert found == steps


def test_the_image_installs_the_package_like_the_makefile():
    make_installs = re.findall(r"pip install (?:--quiet )?(.+)", MAKEFILE)
    docker_installs = re.findall(r"pip install (?:--quiet )?(?:--no-cache-dir )?(.+?)\s*(?:\\|&&|$)", DOCKERFILE)
    assert [i.strip() for i in make_installs][0] == "--upgrade pip" == docker_installs[0].strip()
    # The dependencies from the same lock, hashes checked; then the project itself without dependencies
    # (editable in the Makefile, a wheel in the image); then nothing is broken.
    assert make_installs[1].strip() == "--require-hashes -r requirements.lock" == docker_installs[1].strip()
    assert make_installs[2].strip() == "--no-deps -e ." and docker_installs[2].strip() == "--no-deps ."
    assert "pip check" in MAKEFILE and "&& pip check" in DOCKERFILE
    assert "COPY requirements.lock " in DOCKERFILE
    # Both fetch the word vectors as data (checked by their hash), not as a package.
    assert "fetch-vectors" in MAKEFILE and "helpdesk --instance \"$INSTANCE\" fetch-vectors" in DOCKERFILE
    assert "ja-ginza" not in DOCKERFILE and "ja-ginza" not in (ROOT / "requirements.lock").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    copied = set(re.findall(r"^COPY ([a-z_]+) \./\1$", DOCKERFILE, re.M))
    assert {p.rstrip("*") for p in packages["include"]} <= copied
    assert {"release_notes"} <= copied  # the articles `helpdesk index` reads besides kb/articles


def test_the_locks_pin_every_package_with_hashes():
    """`make lock` writes them from pyproject.toml; every line is an exact version with its hashes."""
    for name in ("requirements.lock", "requirements-test.lock"):
        text = (ROOT / name).read_text(encoding="utf-8")
        pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", text, re.M)
        assert len(pins) > 40 and all("--hash=sha256:" in block for block in re.split(r"\n(?=\S)", text)
                                      if re.match(r"[A-Za-z0-9]", block))
        declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        locked = {n.lower().replace("_", "-"): v for n, v in pins}
        for pin in declared:
            package, version = pin.split("==")
            assert locked[package.lower()] == version, (name, pin)


def test_the_python_version_matches_the_project():
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = re.search(r"^FROM python:(\d+\.\d+)-slim", DOCKERFILE, re.M).group(1)
    assert wanted == f">={version}"


def test_non_root_volume_and_health_check():
    assert re.search(r"^USER helpdesk$", DOCKERFILE, re.M)
    assert 'VOLUME ["/var/lib/helpdesk"]' in DOCKERFILE and "INSTANCE=/var/lib/helpdesk" in DOCKERFILE
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD .*/healthz", DOCKERFILE, re.M)
    assert "exec helpdesk" in ENTRYPOINT  # the server is PID 1's replacement and gets the stop signal
