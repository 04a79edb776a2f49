"""Staff roles. A role is held per site (a StaffMembership); each role is also a Django group of the same name."""

from django.db import models


class Role(models.TextChoices):
    COORDINATOR = "coordinator", "Coordinator"
    THERAPIST = "therapist", "Therapist"
    RATER = "rater", "Independent rater (blinded)"
    INVESTIGATOR = "investigator", "Investigator"
    STATISTICIAN = "statistician", "Statistician (blinded)"
    UNBLINDED_STATISTICIAN = "unblinded_statistician", "Unblinded statistician"
    ADMIN = "admin", "Administrator"


# Roles that never see the allocation, whatever the study's state.
ALWAYS_BLINDED = frozenset({Role.RATER, Role.STATISTICIAN})
# Roles that see the allocation even in a blinded study (the unblinded statistician serves the safety board).
ALWAYS_UNBLINDED = frozenset({Role.UNBLINDED_STATISTICIAN, Role.ADMIN})
# Roles that manage participants: create, screen, consent, enroll, randomize, withdraw.
MANAGE = frozenset({Role.COORDINATOR, Role.INVESTIGATOR, Role.ADMIN})
# Roles that may book a visit's slot: the managers, and therapists (they book dosing sessions).
SCHEDULE = MANAGE | {Role.THERAPIST}
# Roles that may see contact details (they contact participants).
CONTACT = frozenset({Role.COORDINATOR, Role.INVESTIGATOR, Role.THERAPIST, Role.ADMIN})
