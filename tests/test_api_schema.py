"""The OpenAPI schema documents every answer of every operation (trialsite/schema.py), and the answers that the fuzz run
(bin/api_fuzz.py) found outside it now conform: a new endpoint cannot silently break `make fuzz`."""

from __future__ import annotations

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from audit.models import AuditEvent

METHODS = ("get", "post", "put", "patch", "delete")
ERROR_REF = {"$ref": "#/components/schemas/Error"}
VALIDATION_REF = {"$ref": "#/components/schemas/ValidationError"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_every_operation_documents_the_errors_it_can_answer(schema):
    assert len(list(operations(schema))) > 80
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert success, f"{where} documents no success answer"
        public = operation.get("security") == [{}] or path.startswith("/api/v1/links/")
        has_input = bool(operation.get("parameters")) or "requestBody" in operation or "{" in path
        expected = set()
        if not public:
            expected |= {"401", "403"}
        if has_input:
            expected |= {"400", "404"}
        if method != "get":
            expected.add("409")
        if path.startswith("/api/v1/links/"):
            expected.add("429")
        missing = expected - set(responses)
        assert not missing, f"{where} does not document {sorted(missing)}"
        for code, response in responses.items():
            if code >= "400":
                body = response["content"]["application/json"]["schema"]
                assert body == (VALIDATION_REF if code == "400" else ERROR_REF), f"{where} {code}: {body}"
                assert response["description"], f"{where} {code} has no description"


def test_error_bodies_are_components_that_accept_the_bodies_the_api_sends(schema):
    components = schema["components"]["schemas"]
    error = jsonschema.Draft7Validator({**components["Error"], "components": {"schemas": components}})
    validation = jsonschema.Draft7Validator({**components["ValidationError"], "components": {"schemas": components}})
    # DRF's refusals, a domain refusal with its field messages, an export's unknown dataset.
    for body in (
        {"detail": "Authentication credentials were not provided."},
        {"detail": "only an administrator may revoke roles at this site", "code": "permission_denied"},
        {"detail": "no dataset '_'", "code": "not_found", "dataset": ["one of participants, visits"]},
    ):
        assert error.is_valid(body), body
    assert not error.is_valid({"code": "x"})  # a refusal always says what was refused
    for body in (
        {"reason": ["This field is required."]},
        {"answers": {"q1": ["Not a valid choice."]}, "non_field_errors": ["x"]},
        {"detail": "JSON parse error", "code": "parse_error"},
        ["A message for the whole request."],
    ):
        assert validation.is_valid(body), body


def test_an_api_path_that_names_nothing_answers_json_404_and_a_page_path_html(db):
    client = APIClient()
    for path in ("/api/v1/visits/not-a-number/", "/api/v1/no-such-thing/", "/api/v1/export/freezes/x.zip"):
        response = client.get(path)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not found.", "code": "not_found"}
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    assert b"Not Found" in page.content or b"not found" in page.content.lower()
    assert not AuditEvent.objects.exists()


def test_a_calendar_error_is_json_even_when_a_calendar_was_asked_for(alice, api):
    client = api(alice)
    audited = AuditEvent.objects.count()
    for response in (
        client.get("/api/v1/calendar/sites/NOPE.ics", {"format": "ics"}),
        client.get("/api/v1/calendar/sites/NOPE.ics", HTTP_ACCEPT="text/calendar"),
    ):
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "No Site matches the given query."}
    feed = client.get("/api/v1/calendar/sites/PDX.ics", {"format": "ics"})
    assert feed.status_code == 200 and feed["Content-Type"].startswith("text/calendar")
    assert feed.content.startswith(b"BEGIN:VCALENDAR")
    assert AuditEvent.objects.count() == audited  # reads write nothing


def as_json_schema(node):
    """OpenAPI 3.0's ``nullable`` spelled as JSON Schema (a null among the types)."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def conforms(schema: dict, path: str, method: str, status: str, body) -> list[str]:
    """The messages of validating an answer's body against its documented schema (formats checked)."""
    documented = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft7Validator(
        as_json_schema({**documented, "components": schema["components"]}),
        format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER,
    )
    return [error.message for error in validator.iter_errors(body)]


def test_answers_the_fuzz_run_found_outside_their_schema_now_conform(schema, study, alice, api):
    client = api(alice)
    audited = AuditEvent.objects.count()
    # A study without a medical monitor has a blank e-mail: text, not an address format.
    assert study.medical_monitor_email == ""
    studies = client.get("/api/v1/studies/")
    assert studies.status_code == 200
    assert [s["medical_monitor_email"] for s in studies.json()["results"]] == [""]
    assert conforms(schema, "/api/v1/studies/", "get", "200", studies.json()) == []
    # The instrument list is a list.
    instruments = client.get("/api/v1/instruments/")
    assert instruments.status_code == 200 and isinstance(instruments.json(), list) and instruments.json()
    assert conforms(schema, "/api/v1/instruments/", "get", "200", instruments.json()) == []
    # A refusal conforms to its documented error body.
    refused = client.post("/api/v1/studies/", {"code": "X"}, format="json")
    assert refused.status_code == 403
    assert conforms(schema, "/api/v1/studies/", "post", "403", refused.json()) == []
    assert AuditEvent.objects.count() == audited  # reads and a refusal write nothing
