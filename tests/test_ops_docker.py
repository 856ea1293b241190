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
    # The Makefile installs the project editable with its test extra; the image installs the project itself.
    assert re.fullmatch(r"-e '\.(\[test\])?'", make_installs[1].strip())
    assert docker_installs[1].strip() == "."
    # Then the data-only packages (word vectors), without their dependencies, from the same pins.
    data_pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["helpdesk"]["data-packages"]
    assert data_pins and make_installs[2].startswith("--no-deps ") and docker_installs[2].startswith("--no-deps ")
    reads_pins = "print(*tomllib.load(open('pyproject.toml', 'rb'))['tool']['helpdesk']['data-packages'])"
    assert reads_pins in MAKEFILE and reads_pins in DOCKERFILE
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    copied = set(re.findall(r"^COPY ([a-z_]+) \./\1$", DOCKERFILE, re.M))
    assert {p.rstrip("*") for p in packages["include"]} <= copied
    assert {"release_notes"} <= copied  # the articles `helpdesk index` reads besides kb/articles


def test_the_python_version_matches_the_project():
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = re.search(r"^FROM python:(\d+\.\d+)-slim", DOCKERFILE, re.M).group(1)
    assert wanted == f">={version}"


def test_non_root_volume_and_health_check():
    assert re.search(r"^USER helpdesk$", DOCKERFILE, re.M)
    assert 'VOLUME ["/var/lib/helpdesk"]' in DOCKERFILE and "INSTANCE=/var/lib/helpdesk" in DOCKERFILE
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD .*/healthz", DOCKERFILE, re.M)
    assert "exec helpdesk" in ENTRYPOINT  # the server is PID 1's replacement and gets the stop signal
