from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from participants import randomization
from participants.models import AllocationList, AllocationSlot


@given(
    per_stratum=st.integers(min_value=1, max_value=60),
    sizes=st.lists(st.sampled_from([2, 4, 6]), min_size=1, max_size=3),
    seed=st.text(min_size=1, max_size=12),
)
def test_blocks_are_balanced_and_reproducible(per_stratum, sizes, seed):
    slots = randomization.generate(
        arms=["mdma", "placebo"], strata=["A", "B"], block_sizes=sizes, per_stratum=per_stratum, seed=seed
    )
    again = randomization.generate(
        arms=["mdma", "placebo"], strata=["A", "B"], block_sizes=sizes, per_stratum=per_stratum, seed=seed
    )
    assert slots == again
    for stratum in ("A", "B"):
        mine = [s for s in slots if s.stratum == stratum]
        assert [s.sequence for s in mine] == list(range(1, len(mine) + 1))
        assert len(mine) >= per_stratum
        for block in {s.block for s in mine}:
            counts = Counter(s.arm for s in mine if s.block == block)
            assert counts["mdma"] == counts["placebo"]  # every complete block is balanced


def test_different_seeds_give_different_lists():
    a = randomization.generate(arms=["x", "y"], strata=["S"], block_sizes=[4], per_stratum=40, seed="one")
    b = randomization.generate(arms=["x", "y"], strata=["S"], block_sizes=[4], per_stratum=40, seed="two")
    assert [s.arm for s in a] != [s.arm for s in b]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"block_sizes": [3]}, "multiple of the number of arms"),
        ({"arms": ["only"]}, "at least two arms"),
        ({"strata": []}, "at least one stratum"),
    ],
)
def test_bad_specifications_are_refused(kwargs, message):
    spec = {"arms": ["x", "y"], "strata": ["S"], "block_sizes": [2], "per_stratum": 4, "seed": "s"} | kwargs
    with pytest.raises(randomization.AllocationSpecError, match=message):
        randomization.generate(**spec)


def test_csv_errors_name_the_line():
    text = "stratum,sequence,arm\nPDX,1,mdma\nPDX,1,placebo\nPDX,x,mdma\nPDX,3,unicorn\n"
    with pytest.raises(randomization.AllocationSpecError) as info:
        randomization.parse_csv(text, arms=["mdma", "placebo"])
    message = str(info.value)
    assert "line 3: sequence 1 repeats" in message
    assert "line 4: sequence and block must be whole numbers" in message
    assert "line 5: unknown arm 'unicorn'" in message


@pytest.mark.django_db
def test_import_command_replaces_an_unused_list_and_randomizing_follows_it(tmp_path, personas, study, make_participant):
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("stratum,sequence,arm,block\nPDX,1,placebo,1\nPDX,2,mdma,1\nPDX,3,mdma,2\nPDX,4,placebo,2\n")
    call_command("allocation_import", "MAP", str(csv_file), "--by", "admin-pdx")
    active = AllocationList.objects.get(study=study, active=True)
    assert active.source == "imported" and active.slots.count() == 4
    first = make_participant("randomized")
    second = make_participant("randomized")
    assert (first.allocation.arm.code, second.allocation.arm.code) == ("placebo", "mdma")
    # A list in use cannot be replaced.
    with pytest.raises(CommandError, match="already in use"):
        call_command("allocation_import", "MAP", str(csv_file), "--by", "admin-pdx")
    assert AllocationList.objects.get(study=study, active=True).pk == active.pk


@pytest.mark.django_db
def test_generate_command_is_reproducible(personas, study):
    call_command(
        "allocation_generate", "MAP", "--strata", "PDX,NYC", "--per-stratum", "8", "--seed", "s1", "--by", "admin-pdx"
    )
    first = list(
        AllocationSlot.objects.filter(allocation_list__active=True).values_list("stratum", "sequence", "arm__code")
    )
    call_command(
        "allocation_generate", "MAP", "--strata", "PDX,NYC", "--per-stratum", "8", "--seed", "s1", "--by", "admin-pdx"
    )
    second = list(
        AllocationSlot.objects.filter(allocation_list__active=True).values_list("stratum", "sequence", "arm__code")
    )
    assert first == second and len(first) >= 16
    assert AllocationList.objects.filter(study=study).count() == 3  # the fixture's, and two generated; one active
    with pytest.raises(CommandError, match="multiple of the number of arms"):
        call_command(
            "allocation_generate",
            "MAP",
            "--strata",
            "PDX",
            "--block-sizes",
            "3",
            "--per-stratum",
            "8",
            "--seed",
            "s",
            "--by",
            "admin-pdx",
        )


@pytest.mark.django_db
def test_randomizing_with_no_free_slot_says_so(api, alice, personas, study, pdx, make_participant):
    from django.db import transaction

    from participants import services

    with transaction.atomic():
        services.allocation_list_import(
            study=study, csv_text="stratum,sequence,arm\nPDX,1,mdma\n", by=personas["admin"]
        )
    make_participant("randomized")
    participant = make_participant("enrolled")
    response = api(alice).post(f"/api/v1/participants/{participant.participant_id}/randomize/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["stratum"] == ["the allocation list has no free slot in stratum 'PDX'"]
    participant.refresh_from_db()
    assert participant.status == "enrolled" and participant.randomized_at is None
