"""Every write to participants goes through here: validated, atomic, audited in the same transaction.

One module per noun; this package re-exports every service so that ``services.participant_create(...)`` works:

- ``studies``: study_create, study_update, arm_create
- ``sites``: site_create, site_update
- ``memberships``: membership_grant, membership_revoke
- ``eligibility``: criterion_create, criterion_retire, eligibility_record
- ``consent``: consent_document_publish, consent_record
- ``participants``: participant_create, participant_update, participant_enroll
- ``allocation``: allocation_list_generate, allocation_list_import, participant_randomize
- ``withdrawal``: participant_withdraw
- ``unblinding``: study_unblind, study_unblind_withdraw (two approvals unblind a study)
- ``accounts``: staff_account_flags_set, staff_account_save (account flags and details, audited)
- ``profiles``: staff_language_set (a member of staff's own settings)
- ``searches``: contact_search_record (a search of contact details, audited)
- ``demographics``: demographic_form_load, demographics_record (baseline covariates, a form declared as data)

The status machine is ``participants.transitions``; the hooks other apps register are ``participants.hooks``.
"""

from participants.hooks import _after_enroll as _after_enroll
from participants.hooks import _after_randomize as _after_randomize
from participants.hooks import _after_withdraw as _after_withdraw

# Registration hooks, importable from here as before; new code imports participants.hooks (they are not services).
from participants.hooks import on_enrolled as on_enrolled
from participants.hooks import on_randomized as on_randomized
from participants.hooks import on_withdrawn as on_withdrawn
from participants.services.accounts import staff_account_flags_set, staff_account_save
from participants.services.allocation import allocation_list_generate, allocation_list_import, participant_randomize
from participants.services.consent import consent_document_publish, consent_record
from participants.services.demographics import demographic_form_load, demographics_record
from participants.services.eligibility import criterion_create, criterion_retire, eligibility_record
from participants.services.memberships import membership_grant, membership_revoke
from participants.services.participants import participant_create, participant_enroll, participant_update
from participants.services.profiles import staff_language_set
from participants.services.searches import contact_search_record
from participants.services.sites import site_create, site_update
from participants.services.studies import arm_create, study_create, study_update
from participants.services.unblinding import study_unblind, study_unblind_withdraw
from participants.services.withdrawal import participant_withdraw

__all__ = [
    "allocation_list_generate",
    "allocation_list_import",
    "arm_create",
    "consent_document_publish",
    "consent_record",
    "contact_search_record",
    "criterion_create",
    "criterion_retire",
    "demographic_form_load",
    "demographics_record",
    "eligibility_record",
    "membership_grant",
    "membership_revoke",
    "participant_create",
    "participant_enroll",
    "participant_randomize",
    "participant_update",
    "participant_withdraw",
    "site_create",
    "site_update",
    "staff_account_flags_set",
    "staff_account_save",
    "staff_language_set",
    "study_create",
    "study_unblind",
    "study_unblind_withdraw",
    "study_update",
]
