"""Headers and pages an attacker can steer: the /login `next` target, the demo page's script URL and
the Host header, cache and Content-Security-Policy headers on every HTML page."""
from __future__ import annotations

import re

import pytest

from handlers.web import create_app
from tests.staff import PASSWORD, add_records_and_staff, build_demo


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return build_demo(tmp_path_factory.mktemp("demo") / "records.sqlite")


@pytest.fixture
def make_app(instance, demo_db):
    add_records_and_staff(instance, demo_db)
    apps = []

    def make(**config):
        apps.append(create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True, **config}))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["helpdesk"].close()


def form_token(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)


@pytest.mark.parametrize("target", ["/\r\nX-Injected: 1", "/kb\nSet-Cookie: x=1", "/\x00", "/kb\x7f", "/\tkb"])
def test_login_with_a_control_character_in_next_goes_home(make_app, target):
    client = make_app().test_client()
    r = client.post("/login", data={"csrf_token": form_token(client), "login_id": "chiyoda", "password": PASSWORD,
                                    "next": target})
    assert (r.status_code, r.headers["Location"]) == (303, "/")
    assert "X-Injected" not in r.headers and client.get("/api/session").get_json()["signed_in"] is True
