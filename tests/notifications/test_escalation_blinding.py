"""Escalations to staff who may not see the arm (issue 13): in a blinded waitlist study, a coordinator is told of the
visits their blinded schedule lists, by the code it shows them, and not of an arm's own sessions; a role that may
see the arm is told of every visit as it is."""

from __future__ import annotations

import pytest

from participants.models import Study
from participants.selectors import user_ids_blinded_at
from scheduling.blinded_view import blinded_codes
from scheduling.models import Visit
from tests.factories import staff
from tests.test_schedule_blinding import _seed
from trialsite.roles import Role

pytestmark = pytest.mark.django_db


def test_blinded_staff_are_told_of_the_listed_visits_under_their_neutral_codes(alice, pdx):
    # Two participants of a blinded SAMATI-style study, one of each arm (immediate, delayed).
    study, (immediate, delayed) = _seed("samati", pdx, alice, through_primary=False)

    def told(p):
        visits = list(Visit.objects.filter(participant=p))
        by_pk = {v.pk: v.code for v in visits}
        return {by_pk[pk]: code for pk, code in blinded_codes(p, visits).items()}

    assert told(immediate) == {"SCREEN": "SCREEN", "BASELINE": "BASELINE", "POST": "PRIMARY"}
    assert told(delayed) == {"SCREEN": "SCREEN", "BASELINE": "BASELINE", "WAIT_END": "PRIMARY"}

    admin = staff("sam-admin", Role.ADMIN, pdx)
    coordinator = staff("sam-coordinator", Role.COORDINATOR, pdx)
    ids = [admin.pk, coordinator.pk]
    assert user_ids_blinded_at(site_id=pdx.pk, user_ids=ids, study=study) == (coordinator.pk,)
    Study.objects.filter(pk=study.pk).update(unblinded=True)
    study.refresh_from_db()
    assert user_ids_blinded_at(site_id=pdx.pk, user_ids=ids, study=study) == ()
