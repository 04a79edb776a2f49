"""Allocation under concurrency: ids and randomization slots, on PostgreSQL with real parallel transactions."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from participants import services
from participants.models import AllocationSlot, Participant
from tests.conftest import advance
from tests.factories import build_study, staff
from trialsite.roles import Role

pytestmark = pytest.mark.django_db(transaction=True)


def run_concurrently(n: int, work) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def runner(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_twenty_concurrent_creations_get_ids_001_to_020():
    study, sites = build_study()
    coordinator = staff("coord", Role.COORDINATOR, sites["PDX"])

    def create(_):
        return services.participant_create(study=study, site=sites["PDX"], by=coordinator).participant_id

    ids = run_concurrently(20, create)
    assert sorted(ids) == [f"MAP-PDX-{n:03d}" for n in range(1, 21)]
    assert list(Participant.objects.order_by("number").values_list("number", flat=True)) == list(range(1, 21))


def test_twenty_concurrent_randomizations_take_distinct_slots_in_list_order():
    study, sites = build_study(per_stratum=24)
    coordinator = staff("coord", Role.COORDINATOR, sites["PDX"])
    participants = []
    for _ in range(20):
        with transaction.atomic():
            p = services.participant_create(study=study, site=sites["PDX"], by=coordinator)
        participants.append(advance(p, "enrolled", by=coordinator))

    def randomize(index):
        slot = services.participant_randomize(participant=participants[index], by=coordinator)
        return slot.sequence

    sequences = run_concurrently(20, randomize)
    assert sorted(sequences) == list(range(1, 21))  # distinct, and the first 20 of the list: no slot skipped
    taken = AllocationSlot.objects.filter(stratum="PDX", participant__isnull=False)
    assert taken.count() == 20
    # In list order: allocation time follows sequence order.
    by_sequence = list(taken.order_by("sequence").values_list("allocated_at", flat=True))
    assert by_sequence == sorted(by_sequence)
    assert set(Participant.objects.values_list("status", flat=True)) == {"randomized"}
