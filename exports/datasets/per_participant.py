"""The per_participant dataset: one row per participant, ready for a pre/post or mediation analysis.

Covariates (the demographic form's fields), the arm (blinding as in every dataset), the baseline and endpoint score
of every analysis scale with its change, the pseudonymous therapist dyad and raters, the dosing sessions received
and the dose given per session. Its columns come from data (the demographic form, the instrument definitions, the
protocols' dosing sessions), its rows are computed in Python from a fixed number of queries on any database.

Dose recording does not exist yet: the ``dose<N>_mg`` columns are declared (and described in the codebook) but
empty. They travel with the arm: in a placebo-controlled study a dose reveals the allocation, so they are present
only when the arm column is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from assessments.library import instruments_all
from exports.analysis.pairs import paired_scores
from exports.analysis.scales import ANALYSIS_SCALES, RATED_INSTRUMENTS, variable
from exports.analysis.visits import comparison_visits
from exports.columns import (
    ARM,
    FLOAT,
    INT,
    PARTICIPANT_ID,
    SITE,
    STAFF_IDS,
    TEXT,
    TREATING_DYAD,
    Column,
    Filters,
    PCtx,
    Scope,
)
from exports.datasets.base import Dataset, participant_contexts
from exports.pseudonyms import staff_ids
from participants.models import Participant
from participants.selectors import demographic_form_active, demographics_at_sites, participants_at_sites
from scheduling.selectors import dosing_sessions_most

PAIR = (
    "baseline = the protocol's BASELINE visit; endpoint = its ENDPOINT visit, else the first assessment visit every "
    "arm has (SAMATI-style: POST)"
)
_FIXED = frozenset({"participant_id", "site", "status", "arm", "therapist_dyad_id", "dosing_sessions"})


def _reader(key: str) -> Callable[[Mapping[str, Any], PCtx], Any]:
    """The Python derivation of a column whose value the row builder put under ``key``."""

    def read(r: Mapping[str, Any], p: PCtx) -> Any:
        return r.get(key)

    return read


def _demographic(code: str) -> Callable[[Mapping[str, Any], PCtx], Any]:
    def read(r: Mapping[str, Any], p: PCtx) -> Any:
        return r["demographics"].get(code)

    return read


def _col(name: str, type_: str, label: str, **kw: Any) -> Column:
    return Column(name, type_, label, "", _reader(name), **kw)


def _demographic_columns() -> list[Column]:
    form = demographic_form_active()
    cols = []
    for f in form.fields:
        name = f.code if f.code not in _FIXED else f"dem_{f.code}"
        how = f"recorded on the demographic form {form.code} v{form.version} (empty if not recorded)"
        if f.type == "integer":
            how += f"; whole number {f.min}..{f.max}"
        cols.append(
            Column(
                name,
                INT,
                f.label("en"),
                "",
                _demographic(f.code),
                values=f.value_labels("en"),
                unit=f.unit,
                derivation=how,
            )
        )
    return cols


def _scale_columns() -> list[Column]:
    defs = {i.code: i for i in instruments_all()}
    cols = []
    for instrument, code in ANALYSIS_SCALES:
        inst = defs.get(instrument)
        scale = next((s for s in inst.scales if s.code == code), None) if inst is not None else None
        label = f"{instrument}: {scale.label}" if scale is not None else f"{instrument} {code}"
        version = inst.version if inst is not None else ""
        how = scale.reported_method if scale is not None else ""
        name = variable(instrument, code)
        for suffix, what, derivation in (
            ("baseline", "at baseline", f"{how} at the baseline visit; {PAIR}"),
            ("endpoint", "at endpoint", f"{how} at the endpoint visit; {PAIR}"),
            ("change", "change", "endpoint minus baseline (empty unless both were scored)"),
        ):
            cols.append(
                Column(
                    f"{name}_{suffix}",
                    FLOAT,
                    f"{label}, {what}"[:80],
                    "",
                    _reader(f"{name}_{suffix}"),
                    unit="score",
                    derivation=derivation,
                    instrument=instrument,
                    instrument_version=version,
                )
            )
    return cols


def _rater_columns() -> list[Column]:
    cols = []
    for instrument in RATED_INSTRUMENTS:
        for when in ("baseline", "endpoint"):
            cols.append(
                _col(
                    f"{instrument}_rater_id_{when}",
                    TEXT,
                    f"Pseudonymous id of the {instrument} rater at {when}",
                    derivation=f"R-<10 hex>: who entered the {instrument} at the {when} visit; " + STAFF_IDS,
                    instrument=instrument,
                )
            )
    return cols


def _dose_columns() -> list[Column]:
    return [
        Column(
            f"dose{n}_mg",
            FLOAT,
            f"Dose given at dosing session {n}",
            "",
            _reader(f"dose{n}_mg"),
            role="arm",
            unit="mg",
            derivation="total dose given at the session (initial plus supplemental); EMPTY: dose recording does not "
            "exist yet. Present only with the arm, which a dose reveals in a placebo-controlled study",
        )
        for n in range(1, dosing_sessions_most() + 1)
    ]


def per_participant_columns() -> tuple[Column, ...]:
    return (
        PARTICIPANT_ID,
        SITE,
        Column(
            "status",
            TEXT,
            "Participant status",
            "",
            lambda r, p: r.get("status"),
            values={v: v.replace("_", " ") for v in Participant.Status.values},
        ),
        *_demographic_columns(),
        # The pair can differ by arm (a delayed arm compared at the end of its delay), so its codes travel with the
        # arm; the scores below are at each participant's own pair either way.
        _col("baseline_visit", TEXT, "Visit code of the baseline", role="arm", derivation=PAIR),
        _col("endpoint_visit", TEXT, "Visit code of the endpoint", role="arm", derivation=PAIR),
        *_scale_columns(),
        *_rater_columns(),
        TREATING_DYAD,
        _col(
            "dosing_sessions",
            INT,
            "Dosing sessions received",
            role="arm",
            unit="sessions",
            derivation="dosing visits that took place (occurred), whatever the arm gave at them; present only with "
            "the arm column (a delayed-treatment arm receives none before its primary endpoint)",
        ),
        *_dose_columns(),
        ARM,
    )


def per_participant_rows(dataset: Dataset, scope: Scope, filters: Filters) -> Iterator[tuple[Any, ...]]:
    """One row per participant in scope, ordered by participant id: a fixed number of queries, whatever the number of rows."""
    cols = dataset.visible(scope)
    staff = staff_ids(scope.site_ids, scope.study_ids)
    contexts = participant_contexts(scope, with_dosing=True, staff=staff)
    statuses = dict(participants_at_sites(scope.site_ids, scope.study_ids).values_list("id", "status"))
    answers: Mapping[int, Mapping[str, Any]] = dict(
        demographics_at_sites(scope.site_ids, scope.study_ids).values_list("participant_id", "answers")
    )
    paired = paired_scores(scope.site_ids, scope.study_ids, ANALYSIS_SCALES, comparison_visits)
    for pk, ctx in sorted(contexts.items(), key=lambda item: item[1].participant_id):
        row: dict[str, Any] = {
            "status": statuses.get(pk),
            "dosing_sessions": len(ctx.dosing_dates),
            "demographics": answers.get(pk, {}),
        }
        pair = paired.get(pk)
        if pair is not None:
            row["baseline_visit"], row["endpoint_visit"] = pair.first_visit, pair.second_visit
            for instrument, code in ANALYSIS_SCALES:
                name = variable(instrument, code)
                row[f"{name}_baseline"] = pair.value(instrument, code, 0)
                row[f"{name}_endpoint"] = pair.value(instrument, code, 1)
                row[f"{name}_change"] = pair.change(instrument, code)
            for instrument in RATED_INSTRUMENTS:
                first, second = pair.raters.get(instrument, [None, None])
                row[f"{instrument}_rater_id_baseline"] = staff.rater(ctx.study_id, first)
                row[f"{instrument}_rater_id_endpoint"] = staff.rater(ctx.study_id, second)
        yield tuple(c.py(row, ctx) for c in cols)


PER_PARTICIPANT = Dataset(
    name="per_participant",
    label="One row per participant: covariates, baseline and endpoint scores with their change, staff clusters, dosing",
    columns=(),
    from_sql="",
    order_sql="",
    filter_sql={},
    changed_sql="",
    source=None,
    needs_dosing=True,
    needs_staff=True,
    dynamic_columns=per_participant_columns,
    summary_rows=per_participant_rows,
)
