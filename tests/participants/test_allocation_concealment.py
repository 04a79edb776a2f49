"""Allocation concealment: random block sizes of at least 4 by default, block sizes and numbers shown to no site
role, a list generated or imported only by those who manage it, and a start-up warning (participants.W001) when an
open-label or waitlist study randomizes with predictable blocks.

The audit's finding: with blocks of 2 and 4, anyone who can read past arms predicted the next allocation with
certainty for about a quarter of the slots."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import transaction
from django.urls import reverse

from audit.models import AuditEvent
from participants import randomization, services
from participants.checks import allocation_block_warnings, check_allocation_blocks
from participants.models import AllocationList, AllocationSlot
from tests.conftest import changed_tables, table_state
from tests.factories import UserFactory, build_study
from trialsite.errors import PermissionDeniedError
from trialsite.roles import Role

SITE_ROLES = [Role.COORDINATOR, Role.THERAPIST, Role.INVESTIGATOR, Role.RATER, Role.STATISTICIAN]


def test_default_block_sizes_are_two_multiples_of_the_arms_of_at_least_four():
    assert randomization.default_block_sizes(2) == [4, 6]
    assert randomization.default_block_sizes(3) == [6, 9]
    assert randomization.default_block_sizes(4) == [4, 8]
    assert randomization.default_block_sizes(5) == [5, 10]


def test_without_sizes_each_block_is_4_or_6_drawn_at_random_and_balanced():
    slots = randomization.generate(arms=["mdma", "placebo"], strata=["A"], per_stratum=200, seed="s")
    sizes = Counter(Counter(s.block for s in slots).values())
    assert set(sizes) == {4, 6} and min(sizes.values()) >= 5  # both sizes drawn, neither rarely
    for block in {s.block for s in slots}:
        counts = Counter(s.arm for s in slots if s.block == block)
        assert counts["mdma"] == counts["placebo"]
    assert randomization.weak_block_sizes([4, 6]) is None
    assert randomization.weak_block_sizes([2, 4]) == "block size(s) 2 smaller than 4"
    assert randomization.weak_block_sizes([4]) == "a single fixed block size (4)"


@pytest.mark.django_db
def test_the_service_defaults_to_random_sizes_and_records_them_for_the_list_managers_only(study, personas):
    with transaction.atomic():
        allocation_list = services.allocation_list_generate(
            study=study, strata=["PDX", "NYC"], per_stratum=30, seed="fresh", by=personas[Role.ADMIN]
        )
    assert allocation_list.block_sizes == [4, 6]
    slots = AllocationSlot.objects.filter(allocation_list=allocation_list)
    assert set(Counter(slots.filter(stratum="PDX").values_list("block", flat=True)).values()) == {4, 6}
    event = AuditEvent.objects.get(
        entity_type="allocation_list", entity_id=str(allocation_list.pk), field="block_sizes"
    )
    # Allocation-sensitive, and tied to no participant or site: no participant history or site page reads it.
    assert (event.new_value, event.sensitivity, event.participant_id, event.site_code) == (
        [4, 6],
        AuditEvent.Sensitivity.ALLOCATION,
        "",
        "",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("role", SITE_ROLES)
def test_site_staff_may_not_generate_or_import_a_list(study, personas, role):
    before = table_state()
    with pytest.raises(PermissionDeniedError), transaction.atomic():
        services.allocation_list_generate(study=study, strata=["PDX"], per_stratum=8, seed="x", by=personas[role])
    with pytest.raises(PermissionDeniedError), transaction.atomic():
        services.allocation_list_import(study=study, csv_text="stratum,sequence,arm\nPDX,1,mdma\n", by=personas[role])
    assert changed_tables(before, table_state()) == []


@pytest.mark.django_db
def test_no_site_role_receives_block_sizes_or_numbers(api, client, study, personas, make_participant):
    """An open-label study (every site role but the blinded ones sees the arm) randomized from a list with blocks:
    as each site role, the participant list, the participant, its history and its page name no block and carry
    no row of the list's audit trail. The arm does reach those who may see it, so the walk reads real pages."""
    with transaction.atomic():
        services.study_update(study=study, blinded=False, reason="open-label amendment", by=None)
        services.allocation_list_generate(
            study=study, strata=["PDX", "NYC"], block_sizes=[4, 6], per_stratum=12, seed="walk", by=manager()
        )
    participants = [make_participant("randomized") for _ in range(3)]
    assert AllocationSlot.objects.filter(participant__isnull=False, block__gt=0).count() == 3
    list_events = set(AuditEvent.objects.filter(entity_type="allocation_list").values_list("id", flat=True))
    assert list_events
    for role in SITE_ROLES:
        user = personas[role]
        client.force_login(user)
        bodies = [api(user).get("/api/v1/participants/").content]
        for participant in participants:
            pid = participant.participant_id
            bodies.append(api(user).get(f"/api/v1/participants/{pid}/").content)
            history = api(user).get(f"/api/v1/participants/{pid}/history/")
            assert history.status_code == 200, role
            bodies.append(history.content)
            page = client.get(reverse("dashboard-participant", args=[pid]))
            assert page.status_code == 200, role
            bodies.append(page.content)
        for body in bodies:
            assert b"block" not in body.lower(), role
        sees_arm = role not in (Role.RATER, Role.STATISTICIAN)
        assert any(b'"arm"' in body for body in bodies) is sees_arm, role
    # Who may see them: the list's managers, through the list itself (not a site page).
    assert AllocationList.objects.get(study=study, active=True).block_sizes == [4, 6]


def manager():
    """The superuser who set up the test study (build_study): a list manager."""
    return UserFactory(username="system-admin", is_superuser=True)


def _list(study, sizes):
    with transaction.atomic():
        return services.allocation_list_generate(
            study=study, strata=["PDX", "NYC"], block_sizes=sizes, per_stratum=8, seed="check", by=manager()
        )


@pytest.mark.django_db
@pytest.mark.parametrize("sizes", [[4], [2, 4], [6, 6]])
def test_the_check_warns_for_an_open_label_study_with_predictable_blocks(study, sizes):
    with transaction.atomic():
        services.study_update(study=study, blinded=False, reason="open-label amendment", by=None)
    allocation_list = _list(study, sizes)
    [warning] = check_allocation_blocks(databases=["default"])
    assert warning.id == "participants.W001" and "study MAP (open-label)" in warning.msg
    assert warning.obj == f"participants.AllocationList {allocation_list.pk}"
    assert check_allocation_blocks(databases=None) == []  # no database access unless asked for


@pytest.mark.django_db
def test_the_check_is_quiet_for_random_blocks_of_four_or_more_and_for_a_double_blind_study(study):
    # The fixture's double-blind MAPP-style study: blocks of 2 and 4, but the arm shows to no one.
    assert AllocationList.objects.get(study=study, active=True).block_sizes == [2, 4]
    assert allocation_block_warnings() == []
    with transaction.atomic():
        services.study_update(study=study, blinded=False, reason="open-label amendment", by=None)
    _list(study, None)
    assert allocation_block_warnings() == []


@pytest.mark.django_db
def test_the_check_warns_for_a_waitlist_study_even_if_blinded(db):
    """SAMATI-style: only the delayed arm has the end-of-waitlist visit, so its schedule shows the arm."""
    study, _sites = build_study(code="SAM", protocol_code="samati-v1", arms=("immediate", "delayed"))
    [warning] = allocation_block_warnings()
    assert "study SAM (waitlist (protocol samati-v1" in warning.msg and "2 smaller than 4" in warning.msg
    _list(study, None)
    assert allocation_block_warnings() == []


@pytest.mark.django_db
def test_the_check_reads_the_numbered_blocks_of_an_imported_list(study):
    with transaction.atomic():
        services.study_update(study=study, blinded=False, reason="open-label amendment", by=None)
        services.allocation_list_import(
            study=study,
            csv_text="stratum,sequence,arm,block\nPDX,1,mdma,1\nPDX,2,placebo,1\nPDX,3,placebo,2\nPDX,4,mdma,2\n",
            by=manager(),
        )
    assert AllocationList.objects.get(study=study, active=True).block_sizes == [2]
    [warning] = allocation_block_warnings()
    assert "block size(s) 2 smaller than 4" in warning.msg
