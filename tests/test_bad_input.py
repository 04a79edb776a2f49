"""Bad input gets a clear answer, never a 500.

Every write operation (POST, PUT, PATCH) in the OpenAPI schema gets malformed bodies, and every read gets garbage query
parameters and path parameters, as a coordinator and as an administrator. The operations come from the live schema,
so a new endpoint is covered as soon as it exists. Path parameters are filled with real ids, so bodies reach the
validation and the services behind them. Each request runs in a savepoint that is rolled back, so every body meets
the same data (and a database error cannot poison the requests after it).

The contract: no status >= 500, and a 400 answers JSON with at least one message.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import zoneinfo

import pytest
import time_machine
from django.db import transaction
from django.test import Client
from django.utils import timezone

from assessments import services as assessment_services
from assessments.models import Administration, Response, SafetyAlert
from notifications.models import Notification
from safety import services as safety_services
from scheduling.models import Visit
from scheduling.services import schedule_generate

pytestmark = pytest.mark.django_db

HUGE = 10**30
LONG = "x" * 10_000
# Wrong values for any field: wrong types, out-of-range numbers, impossible dates, over-long and NUL-carrying strings.
WRONG = [
    [],
    {},
    {"a": [1, {"b": None}]},
    HUGE,
    -HUGE,
    -1,
    0,
    1.5,
    True,
    "",
    LONG,
    "2026-13-45",
    "not-a-date",
    "2026-02-30T25:61:00Z",
    None,
    "nul\x00byte",
    "🙂" * 300,
]
JUNK_BODIES = [[], "x", None, 0, True, [{"a": 1}], {"": ""}, {"x" * 500: LONG}]
HIGH_CSSRS = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}
# Garbage for query parameters, whatever their names.
GARBAGE_QUERY = ["abc", "-1", "0", str(HUGE), "", "nope", "2026-13-45", "not-a-date", "\x00", "x" * 3000, "1.5", "[]"]
COMMON_QUERY = ["page", "page_size", "from", "to", "status", "site", "study", "kind", "participant_id", "open"]


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_wrong_token_limit(settings):
    # Garbage tokens count as wrong guesses; they must not lock out the real token. The counters live in the shared
    # cache (other test processes use it too), so raise the limit and keep away from the cache instead of clearing it.
    settings.ASSESSMENT_LINK_FAILURE_LIMIT = 10**9


@pytest.fixture
def world(make_participant, alice, personas, study, pdx):
    """Real ids for every path parameter, with the clock inside the BASELINE window so a link can be issued."""
    participant = make_participant("randomized")
    if not Visit.objects.filter(participant=participant).exists():
        schedule_generate(participant=participant, by=None)
    baseline = Visit.objects.get(participant=participant, code="BASELINE")
    noon = dt.datetime.combine(baseline.window_start, dt.time(12), tzinfo=zoneinfo.ZoneInfo(participant.time_zone))
    with time_machine.travel(noon, tick=True):
        link, token = assessment_services.link_issue(visit=baseline, by=alice)
        screen = Visit.objects.get(participant=participant, code="SCREEN")
        response = assessment_services.response_create_staff(
            participant=participant, visit=screen, instrument_code="CSSRS_SCREEN", answers=HIGH_CSSRS, by=alice
        )
        alert = SafetyAlert.objects.filter(response=response).first()
        assert alert is not None, "the high-risk C-SSRS entry should raise an alert"
        adverse_event = safety_services.adverse_event_record(
            participant=participant,
            verbatim_term="nausea",
            onset_at=timezone.now() - dt.timedelta(hours=1),
            severity_grade=2,
            relatedness_drug="possible",
            relatedness_therapy="unlikely",
            expectedness="expected",
            action_taken="dose_not_changed",
            outcome="recovering",
            by=alice,
        )
        dosing_session = safety_services.dosing_session_open(
            visit=Visit.objects.get(participant=participant, code="DOSE1"),
            by=alice,
            started_at=timezone.now() - dt.timedelta(hours=2),
        )
        vital_sign = safety_services.vital_sign_record(
            session=dosing_session,
            timepoint_code="PRE",
            measured_at=timezone.now() - dt.timedelta(hours=1),
            heart_rate=80,
            by=alice,
        )
        medication = safety_services.medication_record(
            participant=participant,
            name="sertraline",
            medication_class="ssri",
            dose_amount=50,
            dose_unit="mg",
            start_date=timezone.localdate() - dt.timedelta(days=30),
            by=alice,
        )
        medication_override = safety_services.medication_override_record(
            visit=Visit.objects.get(participant=participant, code="DOSE1"),
            reason="prescriber confirms a stable dose",
            by=personas["investigator"],
        )
        treatment_guess = safety_services.guess_record(
            participant=participant,
            visit=Visit.objects.get(participant=participant, code="DOSE1"),
            respondent="participant",
            guess="dont_know",
            confidence=10,
            by=alice,
        )
        now = timezone.now()
        notification = Notification.objects.create(
            key=f"fuzz:{participant.pk}",
            participant=participant,
            recipient_kind=Notification.RecipientKind.PARTICIPANT,
            channel=Notification.Channel.EMAIL,
            template="visit_reminder",
            nominal_at=now,
            due_at=now,
            status=Notification.Status.FAILED,
            attempts=1,
            last_error="refused",
        )
        yield {
            "participant": participant,
            "visit": baseline,
            "administration": Administration.objects.filter(visit=baseline).order_by("id").first(),
            "response": response,
            "alert": alert,
            "adverse_event": adverse_event,
            "dosing_session": dosing_session,
            "vital_sign": vital_sign,
            "medication": medication,
            "medication_override": medication_override,
            "treatment_guess": treatment_guess,
            "notification": notification,
            "token": token,
            "study": study,
            "site": pdx,
        }


def path_values(world) -> dict[str, str]:
    return {
        "participant_id": world["participant"].participant_id,
        "visit_id": str(world["visit"].pk),
        "administration_id": str(world["administration"].pk),
        "response_id": str(world["response"].pk),
        "alert_id": str(world["alert"].pk),
        "adverse_event_id": str(world["adverse_event"].pk),
        "dosing_session_id": str(world["dosing_session"].pk),
        "vital_sign_id": str(world["vital_sign"].pk),
        "concomitant_medication_id": str(world["medication"].pk),
        "medication_override_id": str(world["medication_override"].pk),
        "treatment_guess_id": str(world["treatment_guess"].pk),
        "study_code": world["study"].code,
        "notification_id": str(world["notification"].pk),
        "token": world["token"],
        "code": world["study"].code,
        "site_code": world["site"].code,
        "id": "1",
        "dataset": "participants",
        "fmt": "csv",
    }


def plausible_fields(world, path: str) -> dict:
    """Valid values for body fields by name, so one wrong field at a time meets otherwise acceptable input."""
    answers = {f"PCL5_{i:02d}": 1 for i in range(1, 21)}
    if path.startswith("/api/v1/links/"):
        answers = {"PCL5": answers}
    elif path.startswith("/api/v1/responses/{"):
        answers = HIGH_CSSRS  # the stored response is a C-SSRS screen
    return {
        "participant_id": world["participant"].participant_id,
        "visit_id": world["visit"].pk,
        "visit": world["visit"].pk,
        "study": world["study"].code,
        "site": world["site"].code,
        "instrument": "PCL5",
        "answers": answers,
        "room": None,
        "staff": [],
        "version": "1.0",
    }


# --- the schema ----------------------------------------------------------------------------------------------------


@pytest.fixture
def schema(api, alice):
    r = api(alice).get("/api/schema/?format=json")
    assert r.status_code == 200
    return json.loads(r.content)


def resolve(schema: dict, node: dict | None) -> dict:
    while node and "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if node and "allOf" in node and len(node["allOf"]) == 1:
        return resolve(schema, node["allOf"][0])
    return node or {}


def operations(schema: dict, methods: set[str]):
    for path, ops in sorted(schema["paths"].items()):
        for method, op in sorted(ops.items()):
            if method in methods:
                yield path, method, op


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def body_schema(schema: dict, op: dict) -> dict:
    return resolve(schema, op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema"))


def plausible(schema: dict, node: dict, name: str, known: dict):
    if name in known:
        return known[name]
    node = resolve(schema, node)
    if "enum" in node:
        return node["enum"][0]
    kind, fmt = node.get("type"), node.get("format")
    if kind == "object":
        return {k: plausible(schema, v, k, known) for k, v in node.get("properties", {}).items()}
    if kind == "array":
        return []
    if kind == "integer":
        return 1
    if kind == "boolean":
        return True
    if fmt == "date-time":
        return timezone.now().isoformat()
    if fmt == "date":
        return timezone.localdate().isoformat()
    if fmt == "email":
        return "someone@example.org"
    return "a reason"


def mutations(schema: dict, node: dict, known: dict, rng: random.Random):
    """(label, body): a valid-looking body with one field (or one nested field, or one map entry) made wrong."""
    node = resolve(schema, node)
    props = node.get("properties", {})
    base = {k: plausible(schema, v, k, known) for k, v in props.items()}
    yield "every field missing", {}
    # A sample of wrong values per field: the CI's schema fuzz (bin/api_fuzz.py) draws many more against a server.
    for name, sub in props.items():
        sub = resolve(schema, sub)
        for wrong in rng.sample(WRONG, 4):
            yield f"{name}={wrong!r:.40}", {**base, name: wrong}
        if sub.get("type") == "object" and sub.get("properties"):
            for inner in sub["properties"]:
                for wrong in rng.sample(WRONG, 2):
                    yield f"{name}.{inner}={wrong!r:.40}", {**base, name: {**base[name], inner: wrong}}
        extra = sub.get("additionalProperties")
        if sub.get("type") == "object" and extra is not None:
            keys = ["PCL5_01", "PCL5", "nope", "x" * 500, "nul\x00"]
            for key in keys:
                for wrong in rng.sample(WRONG, 2):
                    value = {"PCL5_01": wrong} if resolve(schema, extra).get("type") == "object" else wrong
                    yield f"{name}[{key[:20]!r}]={wrong!r:.40}", {**base, name: {key: value}}


# --- checks --------------------------------------------------------------------------------------------------------


def has_message(body) -> bool:
    if isinstance(body, str):
        return bool(body.strip())
    if isinstance(body, list):
        return any(has_message(v) for v in body)
    if isinstance(body, dict):
        return any(has_message(v) for v in body.values())
    return False


def check(failures: list[str], label: str, response) -> None:
    """Record a failure unless the answer is < 500 and a 400 says what was wrong in JSON."""
    status = response.status_code
    if getattr(response, "streaming", False):
        try:
            b"".join(response.streaming_content)
        except Exception as exc:  # noqa: BLE001 - a broken stream is a failure to report, not to raise
            failures.append(f"{label}: {status} then the stream broke: {exc!r:.300}")
            return
    if status >= 500:
        failures.append(f"{label}: {status} {response.content[:300]!r}")
    elif status == 400:
        try:
            body = json.loads(response.content)
        except ValueError:
            failures.append(f"{label}: 400 without JSON: {response.content[:200]!r}")
            return
        if not has_message(body):
            failures.append(f"{label}: 400 without a message: {body!r:.200}")


def send(client, method: str, url: str, **kwargs):
    """One request in a savepoint rolled back afterwards: every request meets the same data."""
    sid = transaction.savepoint()
    try:
        return getattr(client, method)(url, **kwargs)
    finally:
        transaction.savepoint_rollback(sid)


# The fuzzing's own address (TEST-NET-1): its wrong-token counter is not the one other tests count on.
FUZZ_ADDR = "192.0.2.99"


def client_for(api, user):
    client = api(user)
    client.raise_request_exception = False
    client.defaults["REMOTE_ADDR"] = FUZZ_ADDR
    return client


def report(failures: list[str]) -> str:
    return f"{len(failures)} bad answers:\n" + "\n".join(failures[:60])


# --- the API -------------------------------------------------------------------------------------------------------


def test_the_schema_lists_every_api_view_so_the_fuzzing_covers_it():
    from django.urls import URLPattern, URLResolver, get_resolver
    from drf_spectacular.generators import EndpointEnumerator

    def views(patterns, prefix=""):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                yield from views(p.url_patterns, route)
            elif isinstance(p, URLPattern) and route.startswith("api/v1/"):
                yield getattr(p.callback, "cls", p.callback)

    in_schema = {getattr(cb, "cls", cb) for _, _, _, cb in EndpointEnumerator().get_api_endpoints()}
    missing = {v.__qualname__ for v in views(get_resolver().url_patterns)} - {v.__qualname__ for v in in_schema}
    assert not missing, f"API views missing from the schema (and from this fuzzing): {sorted(missing)}"


WRITE = {"post", "put", "patch"}


@pytest.fixture(params=["coordinator", "admin"])
def staff_user(request, alice, personas):
    return alice if request.param == "coordinator" else personas["admin"]


def test_every_write_endpoint_answers_malformed_bodies_without_a_500(schema, world, staff_user, api):
    client = client_for(api, staff_user)
    values = path_values(world)
    rng = random.Random(20260101)
    failures: list[str] = []
    ops = list(operations(schema, WRITE))
    assert len(ops) >= 20, "the schema should list every write endpoint"
    for path, method, op in ops:
        url = fill(path, values)
        for body in JUNK_BODIES:
            r = send(client, method, url, data=json.dumps(body), content_type="application/json")
            check(failures, f"{method.upper()} {path} body={body!r:.40}", r)
        for content_type, raw in [
            ("text/plain", b"hello"),
            ("application/json", b"\xff\xfe\x00garbage{"),
            ("application/json", b'{"a": '),
            ("application/json", b'{"a": NaN}'),
            ("application/x-www-form-urlencoded", b"reason=&contact=x&answers=1&%ff=%00"),
            ("multipart/form-data; boundary=zz", b"--zz\r\nbroken"),
        ]:
            r = send(client, method, url, data=raw, content_type=content_type)
            check(failures, f"{method.upper()} {path} {content_type} {raw!r:.30}", r)
        for label, body in mutations(schema, body_schema(schema, op), plausible_fields(world, path), rng):
            r = send(client, method, url, data=body, format="json")
            check(failures, f"{method.upper()} {path} {label}", r)
    assert not failures, report(failures)


def test_every_read_endpoint_answers_garbage_query_parameters_without_a_500(schema, world, staff_user, api):
    client = client_for(api, staff_user)
    values = path_values(world)
    rng = random.Random(7)
    failures: list[str] = []
    for path, _method, op in operations(schema, {"get"}):
        url = fill(path, values)
        names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"} | set(COMMON_QUERY)
        for name in sorted(names):
            for garbage in ["\x00", str(HUGE), "", *rng.sample(GARBAGE_QUERY, 1)]:
                r = send(client, "get", url, data={name: garbage})
                check(failures, f"GET {path}?{name}={garbage!r:.30}", r)
        r = send(client, "get", url, data={name: "nope" for name in names} | {"status": ["nope", "pending"]})
        check(failures, f"GET {path} every parameter wrong", r)
    assert not failures, report(failures)


def test_garbage_path_parameters_answer_404_not_500(schema, world, staff_user, api):
    client = client_for(api, staff_user)
    values = path_values(world)
    garbage = {
        "int": ["0", "999999999", str(2**31), str(HUGE), "1" * 400],
        "str": ["999999999", "abc", "x" * 300, "%00", "..", "%F0%9F%99%82" * 40, "a", "x" * 43, "x" * 5000],
    }
    failures: list[str] = []
    for path, method, op in operations(schema, WRITE | {"get"}):
        for param in re.findall(r"\{(\w+)\}", path):
            kind = next((p["schema"].get("type") for p in op["parameters"] if p["name"] == param), "string")
            for bad in garbage["int" if kind == "integer" else "str"]:
                url = fill(path, {**values, param: bad})
                kwargs = {"data": {"reason": "x"}, "format": "json"} if method != "get" else {}
                r = send(client, method, url, **kwargs)
                check(failures, f"{method.upper()} {path} {param}={bad[:30]!r}", r)
                if r.status_code >= 500:
                    continue
                if r.status_code not in (400, 404, 403, 405, 429) and method != "get":
                    failures.append(f"{method.upper()} {path} {param}={bad[:30]!r}: unexpected {r.status_code}")
    assert not failures, report(failures)


# --- targeted answers for cases that once failed ---------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "x", None, 0, [{"reason": "x"}]])
def test_opening_a_questionnaire_early_refuses_a_body_that_is_not_an_object(world, alice, api, body):
    url = f"/api/v1/administrations/{world['administration'].pk}/open/"
    r = api(alice).post(url, data=json.dumps(body), content_type="application/json")
    assert r.status_code == 400
    assert "non_field_errors" in r.json()


@pytest.mark.parametrize("reason", [["travel"], {"a": 1}, "x" * 2001])
def test_opening_a_questionnaire_early_names_a_bad_reason(world, alice, api, reason):
    adm = world["administration"]
    before = Administration.objects.get(pk=adm.pk).opens_at
    r = api(alice).post(f"/api/v1/administrations/{adm.pk}/open/", {"reason": reason}, format="json")
    assert r.status_code == 400
    assert r.json()["reason"]
    assert Administration.objects.get(pk=adm.pk).opens_at == before


@pytest.mark.parametrize("param", ["study", "site", "instrument", "visit_code", "changed_since"])
def test_export_names_a_filter_carrying_a_nul_character(world, personas, api, param):
    r = api(personas["admin"]).get("/api/v1/export/responses.csv", {param: "MAP\x00"})
    assert r.status_code == 400
    assert r.json()[param]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/participants/%00/",
        "/api/v1/participants/P%00/history/",
        "/api/v1/instruments/PCL5%00/",
        "/api/v1/calendar/sites/%00.ics",
        "/api/v1/links/%00/",
    ],
)
def test_a_nul_character_in_a_path_answers_not_found(world, alice, api, url):
    r = api(alice).get(url)
    assert r.status_code == 404
    assert r.json()["detail"]


def test_a_nul_character_in_a_path_answers_not_found_for_writes_and_pages(world, alice, api):
    r = api(alice).post("/api/v1/studies/MAP%00/unblind/", {"reason": "x"}, format="json")
    assert r.status_code == 404 and r.json()["detail"]
    r = api(alice).patch("/api/v1/participants/%00/", {"reason": "x"}, format="json")
    assert r.status_code == 404 and r.json()["detail"]
    assert Client(REMOTE_ADDR=FUZZ_ADDR).get("/l/%00/").status_code == 404


# --- participant pages under /l/ ------------------------------------------------------------------------------------


def test_participant_pages_answer_garbage_form_posts_with_a_page(world):
    failures: list[str] = []
    posts = [
        {},
        {"PCL5_01": "abc"},
        {"PCL5_01": str(HUGE)},
        {"PCL5_01": "-1", "PCL5_02": "1.5"},
        {"PCL5_01": "1" * 5000},
        {"PCL5_01": LONG, "action": LONG},
        {"PCL5_01": "nul\x00byte"},
        {"PCL5_01": ["1", "2"]},
        {"action": "later"},
        {"action": "later", "PCL5_01": "9"},
        {"x" * 500: "y"},
    ]
    # The world fixture keeps the clock inside the BASELINE window, so the questionnaire pages are open.
    anonymous = Client(raise_request_exception=False, REMOTE_ADDR=FUZZ_ADDR)
    for url in ["/l/", "/l/q/1/", "/l/q/0/", "/l/q/1/autosave/", "/l/review/", "/l/done/", "/l/q/" + "9" * 40 + "/"]:
        for data in posts[:3]:
            r = send(anonymous, "post", url, data=data)
            check(failures, f"anonymous POST {url} {data!r:.40}", r)
    for token in ["", "a", "x" * 43, "x" * 5000, "%00", "..%2F"]:
        check(failures, f"GET /l/{token[:20]}/", send(anonymous, "get", f"/l/{token}/"))

    client = Client(raise_request_exception=False, REMOTE_ADDR=FUZZ_ADDR)
    assert client.get(f"/l/{world['token']}/").status_code == 302
    screens = ["/l/q/1/2/", "/l/q/1/0/", "/l/q/1/" + "9" * 40 + "/"]
    for url in ["/l/q/1/", "/l/q/2/", "/l/q/1/autosave/", "/l/q/0/", "/l/q/" + "9" * 40 + "/", *screens]:
        for data in posts:
            r = send(client, "post", url, data=data)
            label = f"POST {url} {data!r:.50}"
            if r.status_code >= 500:
                failures.append(f"{label}: {r.status_code}")
            elif r.status_code not in (200, 302, 400, 404):
                failures.append(f"{label}: unexpected {r.status_code}")
            elif r.status_code == 400 and "autosave" not in url:
                if b"<html" not in r.content.lower():
                    failures.append(f"{label}: 400 without a page")
    for raw, content_type in [
        (b"\xff\xfe%%%", "application/x-www-form-urlencoded"),
        (b"--zz\r\n", "multipart/form-data; boundary=zz"),
    ]:
        for url in ["/l/q/1/", "/l/q/1/autosave/", "/l/review/"]:
            r = send(client, "post", url, data=raw, content_type=content_type)
            if r.status_code not in (200, 302, 400, 404):
                failures.append(f"POST {url} {content_type} {raw!r}: {r.status_code}")
    r = send(client, "post", "/l/review/", data={"anything": LONG})
    assert r.status_code == 400 and b"<html" in r.content.lower()
    assert not failures, report(failures)
    # Nothing already saved is lost: the staff-entered response and its alert are untouched.
    assert Response.objects.filter(pk=world["response"].pk).exists()
    assert SafetyAlert.objects.filter(pk=world["alert"].pk, acknowledged_at__isnull=True).exists()
