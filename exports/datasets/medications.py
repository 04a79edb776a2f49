"""The concomitant_medications dataset: one row per medication recorded for a participant.

De-identified like the other datasets: the medication's name, indication, frequency, free-text dose and taper note are
free text a person typed (a brand, a prescriber, a pharmacy, a circumstance) and are never exported; the class, the
amount with its unit (a fixed list), the route and the study days of start and stop are. Calendar dates only with
``?dates=iso``."""

from __future__ import annotations

from exports.columns import (
    ARM,
    FLOAT,
    INT,
    PARTICIPANT_ID,
    SITE,
    TEXT,
    YES_NO,
    Column,
    date_column,
    date_study_day_column,
)
from exports.datasets.base import Dataset, RowSource
from safety.medication_classes import medication_classes
from safety.models import ConcomitantMedication
from safety.selectors import medications_at_sites


def _columns() -> tuple[Column, ...]:
    # The class list is data (safety/medication_classes/): read when an export starts, so the codebook names every
    # class a site's own list declares.
    return (
        PARTICIPANT_ID,
        SITE,
        Column(
            "medication_class",
            TEXT,
            "Medication class",
            "cm.medication_class",
            lambda r, p: r["medication_class"],
            values={c.code: c.label for c in medication_classes().classes},
        ),
        Column(
            "dose_amount",
            FLOAT,
            "Dose amount (in dose_unit; empty when the dose was entered as text)",
            "cm.dose_amount::float8",
            lambda r, p: float(r["dose_amount"]) if r["dose_amount"] is not None else None,
        ),
        Column(
            "dose_unit",
            TEXT,
            "Dose unit",
            "NULLIF(cm.dose_unit, '')",
            lambda r, p: r["dose_unit"] or None,
            values={v: str(label) for v, label in ConcomitantMedication.DoseUnit.choices},
        ),
        Column(
            "route",
            TEXT,
            "Route",
            "NULLIF(cm.route, '')",
            lambda r, p: r["route"] or None,
            values={v: str(label) for v, label in ConcomitantMedication.Route.choices},
        ),
        date_study_day_column("start_study_day", "Study day the medication started", "cm.start_date", "start_date"),
        date_study_day_column("stop_study_day", "Study day it stopped (empty: ongoing)", "cm.stop_date", "stop_date"),
        Column(
            "ongoing",
            INT,
            "Ongoing (no stop date)",
            "(cm.stop_date IS NULL)::int",
            lambda r, p: int(r["stop_date"] is None),
            values=YES_NO,
        ),
        ARM,
        date_column("start_date", "Start date", "cm.start_date", "start_date"),
        date_column("stop_date", "Stop date", "cm.stop_date", "stop_date"),
    )


CONCOMITANT_MEDICATIONS = Dataset(
    name="concomitant_medications",
    label="One row per concomitant medication (names, indications, free-text doses and notes are not exported)",
    columns=_columns(),
    dynamic_columns=_columns,
    from_sql="JOIN safety_concomitantmedication cm ON cm.participant_id = px.id",
    order_sql="px.participant_id, cm.start_date, cm.id",
    filter_sql={},
    changed_sql="",
    source=RowSource(
        queryset=medications_at_sites,
        fields=("participant_id", "medication_class", "dose_amount", "dose_unit", "route", "start_date", "stop_date"),
        order_by=("participant__participant_id", "start_date", "id"),
        participant="participant_id",
    ),
)
