"""The JSON API fuzzed from its own OpenAPI document (schemathesis): every operation, generated valid and
invalid inputs, against the real app over a real instance. Any 5xx, a status the document does not
list, or a body that does not match the document's schema fails the test. Bounded in examples and in
time (a deadline per example and a budget for the whole run), so it stays well under a minute."""
from __future__ import annotations

import time

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from handlers.web.app import create_app  # noqa: E402
from tests.conftest import build_instance  # noqa: E402
from tests.staff import add_records_and_staff, build_demo  # noqa: E402

pytestmark = pytest.mark.slow  # schemathesis: every operation of the API document, under a time budget

CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)
EXAMPLES_PER_OPERATION = 15
BUDGET_S = 50.0
HIGH = "100000 per minute"


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    instance = build_instance(root / "instance", {
        "SIGN_IN_RATE_LIMIT": HIGH, "SIGN_IN_ID_RATE_LIMIT": HIGH, "LINK_CODE_RATE_LIMIT": HIGH})
    add_records_and_staff(instance, build_demo(root / "records.sqlite"))
    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True})
    yield app
    app.extensions["helpdesk"].close()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", fuzzed_app)


@pytest.fixture(scope="module")
def budget():
    return {"ends": time.monotonic() + BUDGET_S}


def operation_cases() -> list[tuple[str, GenerationMode]]:
    """Every operation of the document, named as schemathesis names them (`POST /api/session`), with
    valid inputs, and with invalid ones where it takes any input at all."""
    from handlers.web.openapi import openapi_spec

    cases = []
    for path, ops in openapi_spec()["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            label = f"{method.upper()} {path}"
            cases.append((label, GenerationMode.POSITIVE))
            if op.get("parameters") or ops.get("parameters") or op.get("requestBody"):
                cases.append((label, GenerationMode.NEGATIVE))
    return cases


@pytest.mark.parametrize("label, mode", operation_cases())
def test_the_api_keeps_to_its_document(api_schema, budget, label, mode):
    if time.monotonic() > budget["ends"]:
        pytest.skip("fuzzing budget spent")
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(checks=CHECKS)

    run()


def test_a_handed_over_conversation_keeps_to_the_document(fuzzed_app, api_schema):
    """The handoff's own reply answers no message (`in_reply_to` null); random inputs rarely reach it."""
    client = fuzzed_app.test_client()
    created = client.post("/api/conversations", json={}).get_json()
    auth = {"Authorization": f"Bearer {created['token']}"}
    assert client.post(f"/api/conversations/{created['id']}/handoff", json={}, headers=auth).status_code == 201
    operation = api_schema.find_operation_by_label("GET /api/conversations/{conversation_id}/messages")
    case = operation.Case(path_parameters={"conversation_id": created["id"]}, headers=auth)
    response = case.call_and_validate(checks=CHECKS)
    assert [m.get("in_reply_to") for m in response.json() if m["role"] == "bot"] == [None]
