"""Unblinding takes two approvals by two different people: an investigator (or administrator) and a holder of the
role the study's protocol names (``unblinding.second_approver_role``; unblinded_statistician when absent). A single
approval leaves the study blinded; each approval is its own audit row with its reason; a study is unblinded once.

Regression of the audit's finding 7: an investigator at one site unblinded a two-site study with one call."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from audit.models import AuditEvent
from participants import services
from participants.models import Study, UnblindingApproval
from scheduling import services as scheduling_services
from scheduling.protocol import SHIPPED_DIR
from tests.conftest import changed_tables, table_state
from tests.factories import staff, unblind
from trialsite.errors import InvalidTransition
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

URL = "/api/v1/studies/MAP/unblind/"


def approvals_audited() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(entity_type="unblinding_approval", field="approval").order_by("id"))


def test_a_single_approval_leaves_the_study_blinded_two_unblind_it_and_both_are_audited(api, personas, study):
    investigator, second = personas[Role.INVESTIGATOR], personas[Role.UNBLINDED_STATISTICIAN]

    first = api(investigator).post(URL, {"reason": "database locked"})
    assert first.status_code == 202
    body = first.json()
    assert body["unblinded"] is False and body["awaiting"] == "unblinded_statistician"
    assert body["detail"] == "awaiting second approval by unblinded_statistician"
    assert [a["approved_by"] for a in body["approvals"]] == [investigator.username]
    assert Study.objects.get(code="MAP").unblinded is False
    [row] = UnblindingApproval.objects.all()
    assert (row.approved_by, row.as_investigator, row.as_second_approver, row.unblinded_at) == (
        investigator,
        True,
        False,
        None,
    )
    [event] = approvals_audited()
    assert event.actor == investigator and event.reason == "database locked"
    assert event.new_value == {"study": "MAP", "as": ["investigator"], "number": 1}
    assert not AuditEvent.objects.filter(entity_type="study", field="unblinded").exists()

    second_answer = api(second).post(URL, {"reason": "primary analysis due"})
    assert second_answer.status_code == 200
    assert second_answer.json()["unblinded"] is True and second_answer.json()["awaiting"] is None
    assert Study.objects.get(code="MAP").unblinded is True
    assert [e.actor for e in approvals_audited()] == [investigator, second]
    assert approvals_audited()[1].reason == "primary analysis due"
    assert approvals_audited()[1].new_value == {"study": "MAP", "as": ["unblinded_statistician"], "number": 2}
    unblinding = AuditEvent.objects.get(entity_type="study", field="unblinded")
    assert (unblinding.old_value, unblinding.new_value, unblinding.actor) == (False, True, second)
    assert investigator.username in unblinding.reason and second.username in unblinding.reason
    assert UnblindingApproval.objects.filter(unblinded_at__isnull=False).count() == 2


def test_one_investigator_of_a_two_site_study_cannot_unblind_it(api, personas, study, nyc):
    """Finding 7. Neither one call, nor the same investigator twice, nor a second investigator (not the role the
    protocol names) unblinds the study."""
    investigator = personas[Role.INVESTIGATOR]  # at PDX only; the study runs at PDX and NYC
    assert sorted(study.sites.values_list("code", flat=True)) == ["NYC", "PDX"]

    assert api(investigator).post(URL, {"reason": "database locked"}).status_code == 202
    again = api(investigator).post(URL, {"reason": "really locked"})
    assert again.status_code == 409 and "another person" in again.json()["detail"]
    other_investigator = staff("ivan-nyc", Role.INVESTIGATOR, nyc)
    before = table_state()
    refused = api(other_investigator).post(URL, {"reason": "database locked"})
    assert refused.status_code == 403
    assert refused.json()["approval"] == ["awaiting approval by unblinded_statistician"]
    assert changed_tables(before, table_state()) == []
    assert Study.objects.get(code="MAP").unblinded is False
    assert UnblindingApproval.objects.count() == 1 and len(approvals_audited()) == 1


def test_the_second_approver_may_come_first(api, personas, study):
    statistician, investigator = personas[Role.UNBLINDED_STATISTICIAN], personas[Role.INVESTIGATOR]
    r = api(statistician).post(URL, {"reason": "DSMB request"})
    assert r.status_code == 202 and r.json()["awaiting"] == "investigator"
    assert Study.objects.get(code="MAP").unblinded is False
    # Another unblinded statistician cannot complete it: one of the two must be an investigator.
    colleague = staff("uma", Role.UNBLINDED_STATISTICIAN, study.sites.get(code="NYC"))
    assert api(colleague).post(URL, {"reason": "DSMB request"}).status_code == 403
    assert api(investigator).post(URL, {"reason": "agreed"}).status_code == 200
    assert Study.objects.get(code="MAP").unblinded is True


def test_an_approval_is_withdrawn_audited_and_kept(api, personas, study):
    investigator, second = personas[Role.INVESTIGATOR], personas[Role.UNBLINDED_STATISTICIAN]
    assert api(investigator).post(URL, {"reason": "database locked"}).status_code == 202
    nothing = api(second).post(f"{URL}withdraw/", {"reason": "x"})
    assert nothing.status_code == 409 and UnblindingApproval.objects.filter(withdrawn_at__isnull=False).count() == 0
    r = api(investigator).post(f"{URL}withdraw/", {"reason": "queries still open"})
    assert r.status_code == 200 and r.json()["approvals"] == [] and r.json()["unblinded"] is False
    row = UnblindingApproval.objects.get()
    assert row.withdrawn_by == investigator and row.withdrawal_reason == "queries still open"
    event = AuditEvent.objects.get(entity_type="unblinding_approval", field="withdrawn_at")
    assert event.actor == investigator and event.reason == "queries still open" and event.entity_id == str(row.pk)
    # The withdrawn approval no longer counts: the next one is a first approval again.
    r = api(second).post(URL, {"reason": "DSMB request"})
    assert r.status_code == 202 and Study.objects.get(code="MAP").unblinded is False
    assert UnblindingApproval.objects.count() == 2


def test_a_study_outside_the_users_sites_is_a_404_and_writes_nothing(api, study):
    from tests.factories import SiteFactory

    outsider = staff("olga", Role.UNBLINDED_STATISTICIAN, SiteFactory(code="SEA"))
    before = table_state()
    assert api(outsider).post(URL, {"reason": "x"}).status_code == 404
    assert api(outsider).post(f"{URL}withdraw/", {"reason": "x"}).status_code == 404
    assert changed_tables(before, table_state()) == []


def test_the_protocol_names_the_second_approver(api, personas, study, tmp_path):
    """A stored protocol version naming ``admin``: the unblinded statistician no longer completes, an administrator
    does."""
    data = json.loads((SHIPPED_DIR / "mapp-v1.json").read_text())
    data["version"], data["unblinding"] = 40, {"second_approver_role": "admin"}
    path = tmp_path / "mapp-v1.json"
    path.write_text(json.dumps(data))
    scheduling_services.protocol_version_load(path=path)
    assert api(personas[Role.INVESTIGATOR]).post(URL, {"reason": "locked"}).json()["awaiting"] == "admin"
    refused = api(personas[Role.UNBLINDED_STATISTICIAN]).post(URL, {"reason": "locked"})
    assert refused.status_code == 403 and Study.objects.get(code="MAP").unblinded is False
    assert api(personas[Role.ADMIN]).post(URL, {"reason": "locked"}).status_code == 200
    assert Study.objects.get(code="MAP").unblinded is True
    assert UnblindingApproval.objects.get(approved_by=personas[Role.ADMIN]).second_approver_role == "admin"


def test_without_a_protocol_the_second_approver_is_the_unblinded_statistician(personas, study, pdx):
    with transaction.atomic():
        services.study_update(study=study, protocol_code="", reason="no protocol file", by=None)
    state = unblind(study, personas[Role.INVESTIGATOR], personas[Role.UNBLINDED_STATISTICIAN])
    assert state.unblinded and Study.objects.get(code="MAP").unblinded


def test_unblinding_happens_once_even_if_the_flag_were_reset(personas, study):
    """Finding 3's second half: after a re-blinding behind the services' back, "unblind once" could be repeated."""
    unblind(study, personas[Role.INVESTIGATOR], personas[Role.UNBLINDED_STATISTICIAN])
    Study.objects.filter(pk=study.pk).update(unblinded=False)  # what the admin once allowed
    count = AuditEvent.objects.count()
    with pytest.raises(InvalidTransition, match="already unblinded"), transaction.atomic():
        services.study_unblind(study=study, by=personas[Role.ADMIN], reason="again")
    assert AuditEvent.objects.count() == count and UnblindingApproval.objects.count() == 2
