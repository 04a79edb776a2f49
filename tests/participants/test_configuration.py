"""Configuration through the services, the only way in: studies, sites, arms, criteria, consent versions and staff
roles. Each service checks the role and writes its audit row; the admin-only API answers 403 to anyone else, a 400
naming the field for bad input, and a 409 for a change that would alter what an allocation means."""

from __future__ import annotations

import json
import random

import pytest
from django.db import transaction

from audit.models import AuditEvent
from participants import services
from participants.models import Arm, EligibilityAnswer, EligibilityCriterion, Participant, Site, StaffMembership, Study
from tests.conftest import changed_tables, table_state
from tests.factories import UserFactory, staff, unblind, unblind_by_api
from trialsite.errors import PermissionDeniedError
from trialsite.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


def last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def events_since(marker: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=marker).order_by("id"))


# --- every configuration service writes its audit row ---------------------------------------------------------------


def test_every_configuration_service_writes_its_audit_row(root, study, pdx, make_participant):
    carol = UserFactory(username="carol")
    # (call, entity_type, action, (field, old, new) triples expected among the rows, reason)
    steps = [
        (
            lambda: services.study_create(
                code="NEW", title="New study", protocol_code="mapp-v1", blinded=True, by=root
            ),
            "study",
            "create",
            [("code", None, "NEW"), ("title", None, "New study"), ("blinded", None, True)],
            "",
        ),
        (
            lambda: services.study_update(
                study=Study.objects.get(code="NEW"), title="Renamed", target_enrollment=40, reason="amendment", by=root
            ),
            "study",
            "update",
            [("title", "New study", "Renamed"), ("target_enrollment", 0, 40)],
            "amendment",
        ),
        (
            lambda: services.site_create(
                code="SEA",
                name="Seattle clinic",
                time_zone="America/Los_Angeles",
                studies=[Study.objects.get(code="NEW")],
                by=root,
            ),
            "site",
            "create",
            [("code", None, "SEA"), ("time_zone", None, "America/Los_Angeles"), ("studies", None, ["NEW"])],
            "",
        ),
        (
            lambda: services.site_update(
                site=Site.objects.get(code="SEA"),
                name="Seattle research clinic",
                studies=[Study.objects.get(code="NEW"), study],
                reason="joins MAP",
                by=root,
            ),
            "site",
            "update",
            [("name", "Seattle clinic", "Seattle research clinic"), ("studies", ["NEW"], ["MAP", "NEW"])],
            "joins MAP",
        ),
        (
            lambda: services.arm_create(study=Study.objects.get(code="NEW"), code="active", label="Active", by=root),
            "arm",
            "create",
            [("study", None, "NEW"), ("code", None, "active"), ("label", None, "Active")],
            "",
        ),
        (
            lambda: services.criterion_create(
                study=Study.objects.get(code="NEW"), code="INC_ADULT", kind="inclusion", text="Adult", by=root
            ),
            "eligibility_criterion",
            "create",
            [("code", None, "INC_ADULT"), ("kind", None, "inclusion"), ("order", None, 0)],
            "",
        ),
        (
            lambda: services.criterion_retire(
                criterion=EligibilityCriterion.objects.get(code="INC_ADULT"), reason="amendment 2", by=root
            ),
            "eligibility_criterion",
            "update",
            [],  # retired_at's new value is a timestamp: checked below
            "amendment 2",
        ),
        (
            lambda: services.consent_document_publish(
                study=Study.objects.get(code="NEW"), version="1.0", title="Main consent", by=root
            ),
            "consent_document",
            "create",
            [("version", None, "1.0"), ("title", None, "Main consent")],
            "",
        ),
        (
            lambda: services.membership_grant(user=carol, site=pdx, role=Role.RATER, by=root),
            "user",
            "role_change",
            [("role", None, "rater@PDX")],
            "",
        ),
        (
            lambda: services.membership_revoke(user=carol, site=pdx, role=Role.RATER, reason="left", by=root),
            "user",
            "role_change",
            [("role", "rater@PDX", None)],
            "left",
        ),
    ]
    for call, entity_type, action, expected, reason in steps:
        marker = last_id()
        with transaction.atomic():
            result = call()
        written = events_since(marker)
        assert written, f"{entity_type} {action}: no audit row"
        assert {(e.entity_type, e.action) for e in written} == {(entity_type, action)}
        assert all(e.actor_id == root.id and e.reason == reason for e in written)
        if result is not None:
            assert {e.entity_id for e in written} == {str(carol.pk) if entity_type == "user" else str(result.pk)}
        triples = [(e.field, e.old_value, e.new_value) for e in written]
        assert all(triple in triples for triple in expected), (entity_type, action, triples)
    retired = AuditEvent.objects.get(entity_type="eligibility_criterion", action="update")
    assert retired.field == "retired_at" and retired.old_value is None and retired.new_value
    assert Study.objects.get(code="NEW").title == "Renamed"
    assert set(Site.objects.get(code="SEA").studies.values_list("code", flat=True)) == {"NEW", "MAP"}


def test_a_service_refuses_a_person_without_the_role_and_writes_nothing(personas, study, pdx):
    admin_at_pdx, coordinator = personas[Role.ADMIN], personas[Role.COORDINATOR]
    calls = [
        lambda by: services.study_create(code="NEW", title="x", by=by),
        lambda by: services.study_update(study=study, title="x", reason="r", by=by),
        lambda by: services.site_create(code="SEA", name="x", time_zone="UTC", by=by),
        lambda by: services.site_update(site=pdx, studies=[], reason="r", by=by),
        lambda by: services.arm_create(study=study, code="extra", label="x", by=by),
        lambda by: services.criterion_create(study=study, code="INC_X", kind="inclusion", text="x", by=by),
        lambda by: services.criterion_retire(criterion=study.criteria.first(), reason="r", by=by),
    ]
    before = table_state()
    for by in (admin_at_pdx, coordinator):
        for call in calls:
            with pytest.raises(PermissionDeniedError), transaction.atomic():
                call(by)
    # A site's own administrator changes the site's details and its roles, nothing else.
    for call in (
        lambda by: services.site_update(site=pdx, name="Portland", reason="r", by=by),
        lambda by: services.membership_grant(user=personas[Role.RATER], site=pdx, role=Role.THERAPIST, by=by),
    ):
        with pytest.raises(PermissionDeniedError), transaction.atomic():
            call(coordinator)
    assert changed_tables(before, table_state()) == []


# --- the API ---------------------------------------------------------------------------------------------------------


def test_a_superuser_configures_a_study_through_the_api(api, root, study):
    client = api(root)
    r = client.post(
        "/api/v1/studies/",
        {"code": "NEW", "title": "New study", "protocol_code": "mapp-v1", "blinded": True, "target_enrollment": 30},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json() == {
        "code": "NEW",
        "title": "New study",
        "protocol_reference": "",
        "protocol_code": "mapp-v1",
        "target_enrollment": 30,
        "blinded": True,
        "unblinded": False,
        "medical_monitor_name": "",
        "medical_monitor_email": "",
        "hides_safety_from_raters": True,
        "start_date": None,
        "arms": [],
    }
    r = client.post(
        "/api/v1/sites/",
        {"code": "SEA", "name": "Seattle clinic", "time_zone": "America/Los_Angeles", "studies": ["NEW"]},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json() == {
        "code": "SEA",
        "name": "Seattle clinic",
        "time_zone": "America/Los_Angeles",
        "studies": ["NEW"],
        "roles": ["admin"],
    }
    for code, label in (("active", "Active"), ("control", "Control")):
        r = client.post("/api/v1/studies/NEW/arms/", {"code": code, "label": label}, format="json")
        assert r.status_code == 201 and r.json() == {"code": code, "label": label}
    r = client.post(
        "/api/v1/studies/NEW/criteria/", {"code": "INC_ADULT", "kind": "inclusion", "text": "Adult"}, format="json"
    )
    assert r.status_code == 201
    criterion = r.json()
    assert criterion["code"] == "INC_ADULT" and criterion["order"] == 0 and criterion["retired_at"] is None
    r = client.post("/api/v1/studies/NEW/consent-documents/", {"version": "1.0", "title": "Main"}, format="json")
    assert r.status_code == 201 and r.json()["version"] == "1.0" and r.json()["published_by"] == "root"
    r = client.patch("/api/v1/studies/NEW/", {"title": "Renamed", "reason": "amendment"}, format="json")
    assert r.status_code == 200 and r.json()["title"] == "Renamed"
    assert [a["code"] for a in r.json()["arms"]] == ["active", "control"]
    r = client.patch("/api/v1/sites/SEA/", {"contact_phone": "+1 206 555 0100", "reason": "new line"}, format="json")
    assert r.status_code == 200 and r.json()["code"] == "SEA"

    study_new = Study.objects.get(code="NEW")
    assert (study_new.title, study_new.blinded, study_new.target_enrollment) == ("Renamed", True, 30)
    assert list(study_new.arms.values_list("code", flat=True)) == ["active", "control"]
    assert Site.objects.get(code="SEA").contact_phone == "+1 206 555 0100"
    r = client.get("/api/v1/studies/NEW/criteria/")
    assert r.status_code == 200 and [c["code"] for c in r.json()["results"]] == ["INC_ADULT"]
    r = client.get("/api/v1/studies/NEW/consent-documents/")
    assert [d["version"] for d in r.json()["results"]] == ["1.0"]


CONFIG_WRITES = [
    ("post", "/api/v1/studies/", {"code": "NEW", "title": "x"}),
    ("patch", "/api/v1/studies/MAP/", {"title": "x", "reason": "r"}),
    ("post", "/api/v1/sites/", {"code": "SEA", "name": "x", "time_zone": "UTC"}),
    ("patch", "/api/v1/sites/PDX/", {"name": "x", "reason": "r"}),
    ("post", "/api/v1/studies/MAP/arms/", {"code": "extra", "label": "x"}),
    ("post", "/api/v1/studies/MAP/criteria/", {"code": "INC_X", "kind": "inclusion", "text": "x"}),
    ("post", "/api/v1/studies/MAP/criteria/{criterion}/retire/", {"reason": "r"}),
    ("post", "/api/v1/studies/MAP/consent-documents/", {"version": "9.0", "title": "x"}),
    ("post", "/api/v1/sites/PDX/memberships/", {"username": "rater-pdx", "role": "therapist"}),
    ("delete", "/api/v1/sites/PDX/memberships/{membership}/?reason=r", None),
]


@pytest.mark.parametrize("role", [r for r in Role if r != Role.ADMIN])
def test_configuration_endpoints_answer_403_to_every_other_role_and_change_nothing(api, personas, study, role):
    client = api(personas[role])
    ids = {
        "criterion": study.criteria.first().pk,
        "membership": StaffMembership.objects.get(user=personas[Role.RATER]).pk,
    }
    before = table_state()
    for method, url, body in CONFIG_WRITES:
        # Whatever the body, even a malformed one: the role is checked first.
        for data in (body, {"code": "\x00"}):
            r = getattr(client, method)(url.format(**ids), data, format="json")
            assert r.status_code == 403, (method, url, r.status_code, r.content)
            assert "administrator" in r.json()["detail"]
    r = client.get("/api/v1/sites/PDX/memberships/")
    assert r.status_code == 403
    assert changed_tables(before, table_state()) == []


def test_a_site_administrator_changes_the_own_site_and_its_roles_only(api, personas, study, pdx, nyc):
    admin = personas[Role.ADMIN]  # administrator at PDX only, not a superuser
    client = api(admin)
    before = table_state()
    for method, url, body in CONFIG_WRITES[:3] + CONFIG_WRITES[4:8]:
        r = getattr(client, method)(url.format(criterion=study.criteria.first().pk), body, format="json")
        assert r.status_code == 403, (method, url, r.content)
    r = client.patch("/api/v1/sites/PDX/", {"studies": [], "reason": "r"}, format="json")
    assert r.status_code == 403 and "studies" in r.json()["detail"]
    r = client.patch("/api/v1/sites/NYC/", {"name": "x", "reason": "r"}, format="json")
    assert r.status_code == 404  # not one of the administrator's sites
    assert changed_tables(before, table_state()) == []

    r = client.patch("/api/v1/sites/PDX/", {"name": "Portland research clinic", "reason": "renamed"}, format="json")
    assert r.status_code == 200 and r.json()["name"] == "Portland research clinic"
    assert Site.objects.get(code="PDX").name == "Portland research clinic"

    dora = UserFactory(username="dora")
    r = client.post("/api/v1/sites/PDX/memberships/", {"username": "dora", "role": "therapist"}, format="json")
    assert r.status_code == 201
    granted = r.json()
    assert (granted["username"], granted["site"], granted["role"]) == ("dora", "PDX", "therapist")
    assert StaffMembership.objects.filter(user=dora, site=pdx, role="therapist").exists()
    listed = client.get("/api/v1/sites/PDX/memberships/").json()["results"]
    assert {"dora", admin.username} <= {m["username"] for m in listed}

    r = client.delete(f"/api/v1/sites/PDX/memberships/{granted['id']}/")
    assert r.status_code == 400 and r.json()["reason"]
    assert StaffMembership.objects.filter(user=dora).exists()
    r = client.delete(f"/api/v1/sites/PDX/memberships/{granted['id']}/?reason=left+the+team")
    assert r.status_code == 204
    assert not StaffMembership.objects.filter(user=dora).exists()
    event = AuditEvent.objects.get(action="role_change", old_value="therapist@PDX")
    assert event.reason == "left the team" and event.actor_id == admin.id
    r = client.post("/api/v1/sites/PDX/memberships/", {"username": "nobody", "role": "therapist"}, format="json")
    assert r.status_code == 400 and r.json()["username"] == ["unknown user"]


def test_blinding_and_protocol_are_fixed_once_a_participant_is_randomized(api, root, study, make_participant):
    client = api(root)
    r = client.patch("/api/v1/studies/MAP/", {"blinded": False}, format="json")
    assert r.status_code == 400 and r.json()["reason"] == ["required"]
    make_participant("randomized")
    before = table_state()
    for body, field in (({"blinded": False}, "blinded"), ({"protocol_code": "samati-v1"}, "protocol_code")):
        r = client.patch("/api/v1/studies/MAP/", {**body, "reason": "amendment"}, format="json")
        assert r.status_code == 409, r.content
        assert "randomized" in r.json()["detail"] and r.json()[field] == ["fixed once a participant is randomized"]
    r = client.post("/api/v1/studies/MAP/arms/", {"code": "third", "label": "Third"}, format="json")
    assert r.status_code == 409 and "arms" in r.json()["detail"]
    assert changed_tables(before, table_state()) == []
    # Other settings still change.
    r = client.patch("/api/v1/studies/MAP/", {"target_enrollment": 90, "reason": "more sites"}, format="json")
    assert r.status_code == 200 and Study.objects.get(code="MAP").target_enrollment == 90


def test_the_unblinded_flag_and_codes_are_not_editable(api, root, study, pdx):
    client = api(root)
    before = table_state()
    r = client.patch("/api/v1/studies/MAP/", {"unblinded": True, "reason": "x"}, format="json")
    assert r.status_code == 400 and "unblind/" in r.json()["unblinded"][0]
    r = client.patch("/api/v1/studies/MAP/", {"code": "NEW", "reason": "x"}, format="json")
    assert r.status_code == 400 and r.json()["code"]
    r = client.patch("/api/v1/sites/PDX/", {"code": "POR", "reason": "x"}, format="json")
    assert r.status_code == 400 and r.json()["code"]
    assert changed_tables(before, table_state()) == []
    unblind(study, root, staff("ursula", Role.UNBLINDED_STATISTICIAN, pdx))
    r = client.patch("/api/v1/studies/MAP/", {"blinded": False, "reason": "x"}, format="json")
    assert r.status_code == 409 and "unblinded" in r.json()["detail"]


def test_bad_configuration_input_names_the_field(api, root, study):
    client = api(root)
    before = table_state()
    cases = [
        ("/api/v1/studies/", {"code": "map", "title": "x"}, "code"),
        ("/api/v1/studies/", {"code": "MAP", "title": "x"}, "code"),  # exists
        ("/api/v1/studies/", {"code": "NEW", "title": "x", "target_enrollment": -1}, "target_enrollment"),
        ("/api/v1/sites/", {"code": "SEA", "name": "x", "time_zone": "Mars/Olympus"}, "time_zone"),
        ("/api/v1/sites/", {"code": "SEA", "name": "x", "time_zone": "America"}, "time_zone"),  # a folder
        ("/api/v1/sites/", {"code": "SEA", "name": "x", "time_zone": "UTC", "studies": ["NOPE"]}, "studies"),
        ("/api/v1/sites/", {"code": "PDX", "name": "x", "time_zone": "UTC"}, "code"),  # exists
        ("/api/v1/studies/MAP/arms/", {"code": "mdma", "label": "again"}, "code"),  # exists
        ("/api/v1/studies/MAP/arms/", {"code": "no spaces", "label": "x"}, "code"),
        ("/api/v1/studies/MAP/criteria/", {"code": "INC_AGE", "kind": "inclusion", "text": "x"}, "code"),
        ("/api/v1/studies/MAP/criteria/", {"code": "INC_X", "kind": "maybe", "text": "x"}, "kind"),
        ("/api/v1/studies/MAP/consent-documents/", {"version": "1.0", "title": "again"}, "version"),
    ]
    for url, body, field in cases:
        r = client.post(url, body, format="json")
        assert r.status_code == 400, (url, body, r.content)
        assert r.json()[field], (url, body, r.json())
    assert changed_tables(before, table_state()) == []


def test_a_retired_criterion_is_no_longer_asked_and_its_answers_stay(api, root, alice, study, make_participant):
    screened = make_participant("eligible")  # answered INC_AGE and EXC_PREG
    criterion = EligibilityCriterion.objects.get(study=study, code="EXC_PREG")
    client = api(root)
    r = client.post(f"/api/v1/studies/MAP/criteria/{criterion.pk}/retire/", {}, format="json")
    assert r.status_code == 400 and r.json()["reason"]
    r = client.post(f"/api/v1/studies/MAP/criteria/{criterion.pk}/retire/", {"reason": "amendment 3"}, format="json")
    assert r.status_code == 200 and r.json()["retired_at"]
    criterion.refresh_from_db()
    assert criterion.retired_at is not None and criterion.retired_by == root
    r = client.post(f"/api/v1/studies/MAP/criteria/{criterion.pk}/retire/", {"reason": "again"}, format="json")
    assert r.status_code == 409

    # The earlier answer is kept; a new participant is eligible on the remaining criterion alone.
    assert EligibilityAnswer.objects.filter(participant=screened, criterion=criterion).exists()
    newcomer = make_participant("screening")
    url = f"/api/v1/participants/{newcomer.participant_id}/eligibility/"
    r = api(alice).post(url, {"answers": {"INC_AGE": True, "EXC_PREG": False}}, format="json")
    assert r.status_code == 400 and r.json()["EXC_PREG"] == ["criterion retired: no longer asked"]
    r = api(alice).post(url, {"answers": {"INC_AGE": True}}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "eligible"
    assert not EligibilityAnswer.objects.filter(participant=newcomer, criterion=criterion).exists()
    listed = client.get("/api/v1/studies/MAP/criteria/").json()["results"]
    assert {c["code"]: c["retired_at"] is not None for c in listed} == {"INC_AGE": False, "EXC_PREG": True}


def test_studies_and_sites_lists_keep_their_shape(api, alice, root, study):
    with transaction.atomic():
        services.study_create(code="NEW", title="No sites yet", by=root)
    body = api(alice).get("/api/v1/studies/").json()
    assert [s["code"] for s in body["results"]] == ["MAP"]
    assert set(body["results"][0]) == {
        "code",
        "title",
        "protocol_reference",
        "protocol_code",
        "target_enrollment",
        "blinded",
        "unblinded",
        "medical_monitor_name",
        "medical_monitor_email",
        "hides_safety_from_raters",
        "start_date",
        "arms",
    }
    body = api(alice).get("/api/v1/sites/").json()
    assert body["results"] == [
        {
            "code": "PDX",
            "name": "Site PDX",
            "time_zone": "America/Los_Angeles",
            "studies": ["MAP"],
            "roles": ["coordinator"],
        }
    ]


def test_unblinding_lives_at_the_same_address(api, personas, study):
    r = unblind_by_api(api, "MAP", personas[Role.INVESTIGATOR], personas[Role.UNBLINDED_STATISTICIAN])
    assert r.status_code == 200 and r.json()["code"] == "MAP" and r.json()["unblinded"] is True
    assert AuditEvent.objects.filter(entity_type="study", field="unblinded", new_value=True).count() == 1
    r = api(personas[Role.INVESTIGATOR]).post("/api/v1/studies/MAP/unblind/", {"reason": "again"})
    assert r.status_code == 400 and "already" in r.json()["detail"]
    r = api(personas[Role.INVESTIGATOR]).post("/api/v1/studies/NOPE/unblind/", {"reason": "x"})
    assert r.status_code == 404


def test_configuration_endpoints_answer_bad_input_without_a_500(api, root, study, make_participant):
    """The schema-driven fuzzing of tests/test_bad_input.py, as a superuser, who gets past the role check."""
    from tests.test_bad_input import JUNK_BODIES, body_schema, check, mutations, operations, report, send

    make_participant("screening")
    schema = json.loads(api(root).get("/api/schema/?format=json").content)
    client = api(root)
    client.raise_request_exception = False
    values = {"code": "MAP", "site_code": "PDX", "id": str(study.criteria.first().pk)}
    known = {"studies": ["MAP"], "time_zone": "UTC", "kind": "inclusion", "role": "therapist", "username": "root"}
    rng = random.Random(9)
    failures: list[str] = []
    config_paths = ("/api/v1/studies/", "/api/v1/sites/")
    ops = [op for op in operations(schema, {"post", "patch"}) if op[0].startswith(config_paths)]
    assert len(ops) >= 9
    for path, method, op in ops:
        url = path.format(**values)
        for body in JUNK_BODIES:
            r = send(client, method, url, data=json.dumps(body), content_type="application/json")
            check(failures, f"{method.upper()} {path} body={body!r:.40}", r)
        for label, body in mutations(schema, body_schema(schema, op), known, rng):
            r = send(client, method, url, data=body, format="json")
            check(failures, f"{method.upper()} {path} {label}", r)
    assert not failures, report(failures)
    assert Participant.objects.count() == 1 and not Arm.objects.exclude(study=study).exists()


def test_the_demo_builds_its_study_through_the_services_once():
    from dashboard.demo import seed_demo

    logins = seed_demo()
    assert {username for username, _, _ in logins} >= {"admin", "coordinator", "investigator"}
    study = Study.objects.get(code="SAM")
    assert (study.protocol_code, study.target_enrollment, study.blinded) == ("samati-v2", 20, False)
    assert list(study.arms.values_list("code", flat=True)) == ["immediate", "delayed"]
    assert list(study.criteria.values_list("code", "order")) == [
        ("INC_AGE", 0),
        ("INC_SAD", 1),
        ("EXC_CARDIO", 2),
        ("EXC_PREG", 3),
    ]
    assert {site.code: site.contact_email for site in study.sites.all()} == {
        "PDX": "pdx-study@trialsite.invalid",
        "NYC": "nyc-study@trialsite.invalid",
    }
    assert Participant.objects.filter(study=study).count() == 12
    # samati-v2 randomizes only after baseline: every randomized demo participant had screening and baseline first,
    # inside their windows (no deviation), and the arm's visits follow.
    from scheduling.models import ProtocolDeviation, Visit

    randomized = Participant.objects.filter(study=study, randomized_at__isnull=False)
    assert randomized.count() >= 4
    for p in randomized:
        done = dict(Visit.objects.filter(participant=p, code__in=["SCREEN", "BASELINE"]).values_list("code", "status"))
        assert done == {"SCREEN": "completed", "BASELINE": "completed"}, p.participant_id
        assert Visit.objects.filter(participant=p, code="PREP1").exists() or p.status == "withdrawn"
    assert not ProtocolDeviation.objects.filter(participant__study=study).exists()
    created = set(AuditEvent.objects.filter(action="create").values_list("entity_type", flat=True))
    assert {"study", "site", "arm", "eligibility_criterion", "consent_document"} <= created
    before = table_state()
    seed_demo()  # a second run resets passwords only
    assert changed_tables(before, table_state()) == []
