"""Blinding indices: pure functions of a table of guesses against allocated arms. No database, no access checks.

Who may see an index per arm is decided by ``safety.guess_selectors``; this module only counts.

A table is a mapping ``{allocated arm code: {guessed option: count}}``, where an option is an arm code of the study
or ``"dont_know"``. Two indices:

Bang's index (Bang H, Ni L, Davis CE. Assessment of blinding in clinical trials. Controlled Clinical Trials
2004;25:143-156), one per arm::

    BI = (2 * n_correct / (n_correct + n_incorrect) - 1) * (n_correct + n_incorrect) / n
       = (n_correct - n_incorrect) / n              (n counts "don't know" answers too)

from -1 (everyone guessed the other arm) through 0 (guessing at random, or all "don't know") to 1 (everyone guessed
their own arm). Its variance is the multinomial variance of the difference of two proportions, with
p_C = n_correct / n and p_I = n_incorrect / n::

    Var(BI) = (p_C (1 - p_C) + p_I (1 - p_I) + 2 p_C p_I) / n

With more than two arms, a guess of any other arm counts as incorrect.

James' index (James KE, Bloch DA, Lee KK, Kraemer HC, Fuller RK. An index for assessing blindness in a
multi-centre clinical trial: disulfiram for alcohol cessation - a VA cooperative study. Statistics in Medicine
1996;15:1421-1434), one for the whole two-arm table, from 0 (complete unblinding) through 0.5 (random guessing) to
1 (complete blinding, everyone answers "don't know"). With p_ij the proportion guessing arm i among those allocated
arm j (i, j over the two arms), p_i. the proportion guessing arm i, p_.j - p_dk,j the proportion allocated arm j
who named an arm, P_dk the proportion answering "don't know", and disagreement weights w_ij (0 on the diagonal,
equal off it: the index does not depend on their scale)::

    P_o = sum w_ij p_ij / (1 - P_dk)
    P_e = sum w_ij p_i. (p_.j - p_dk,j) / (1 - P_dk)^2
    kappa_d = (P_o - P_e) / P_e
    BI = (1 + P_dk + (1 - P_dk) kappa_d) / 2

and its large-sample variance (the paper's delta-method estimate), with
e_ij = sum_r (w_rj p_r. + w_ir (p_.r - p_dk,r))::

    Var(BI) = ( sum p_ij (1 - P_dk)^2 ((1 - P_dk) w_ij - (1 + kappa_d) e_ij)^2 / (4 (sum w_ij p_i. (p_.j - p_dk,j))^2)
              + P_dk (1 - P_dk) - (1 - P_dk)(1 + kappa_d)(P_dk + (1 - P_dk)(1 + kappa_d) / 4) ) / n

Everyone answering "don't know" gives BI = 1 with variance 0. James' index is defined here for two arms only; with
another number of arms it is None. tests/safety/test_blinding_indices.py checks both indices against the worked
table published with the reference implementation of the two papers (disulfiram trial: 48/22, 4/30, 330/319).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DONT_KNOW = "dont_know"
Z_95 = 1.959963984540054

Table = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class Estimate:
    value: float
    se: float

    @property
    def lower(self) -> float:
        return self.value - Z_95 * self.se

    @property
    def upper(self) -> float:
        return self.value + Z_95 * self.se

    def as_dict(self, digits: int = 4) -> dict[str, float]:
        return {
            "value": round(self.value, digits),
            "se": round(self.se, digits),
            "ci_lower": round(self.lower, digits),
            "ci_upper": round(self.upper, digits),
        }


@dataclass(frozen=True)
class ArmCounts:
    arm: str
    correct: int
    incorrect: int
    dont_know: int

    @property
    def total(self) -> int:
        return self.correct + self.incorrect + self.dont_know


def arm_counts(table: Table, arm: str) -> ArmCounts:
    """Correct, incorrect and "don't know" answers among the participants allocated ``arm``."""
    row = table.get(arm, {})
    correct = int(row.get(arm, 0))
    dont_know = int(row.get(DONT_KNOW, 0))
    incorrect = sum(int(n) for option, n in row.items() if option not in (arm, DONT_KNOW))
    return ArmCounts(arm=arm, correct=correct, incorrect=incorrect, dont_know=dont_know)


def bang_index(counts: ArmCounts) -> Estimate | None:
    """Bang's index of one arm (Bang, Ni & Davis 2004) with its standard error; None when nobody in it answered."""
    n = counts.total
    if n == 0:
        return None
    p_c, p_i = counts.correct / n, counts.incorrect / n
    variance = (p_c * (1 - p_c) + p_i * (1 - p_i) + 2 * p_c * p_i) / n
    return Estimate(value=(counts.correct - counts.incorrect) / n, se=math.sqrt(max(variance, 0.0)))


def bang_indices(table: Table, arms: Sequence[str]) -> dict[str, Estimate | None]:
    return {arm: bang_index(arm_counts(table, arm)) for arm in arms}


def james_index(table: Table, arms: Sequence[str]) -> Estimate | None:
    """James' index of a two-arm table (James, Bloch, Lee, Kraemer & Fuller 1996) with its standard error; None for
    another number of arms, for an empty table, or where the expected disagreement is zero (every arm guessed
    naming one arm only, the index is undefined)."""
    if len(arms) != 2:
        return None
    n = sum(int(table.get(a, {}).get(o, 0)) for a in arms for o in (*arms, DONT_KNOW))
    if n == 0:
        return None
    # p[i][j]: guess i (0, 1: the arms; 2: don't know), allocation j, as proportions of n.
    p = [[int(table.get(arms[j], {}).get(option, 0)) / n for j in range(2)] for option in (*arms, DONT_KNOW)]
    p_dk = p[2][0] + p[2][1]
    if p_dk >= 1:
        return Estimate(value=1.0, se=0.0)
    w = [[0.0, 1.0], [1.0, 0.0]]
    row = [p[i][0] + p[i][1] for i in range(2)]  # p_i.: guessed arm i
    named = [p[0][j] + p[1][j] for j in range(2)]  # p_.j - p_dk,j: allocated j and named an arm
    expected = sum(w[i][j] * row[i] * named[j] for i in range(2) for j in range(2))
    if expected == 0:
        return None
    observed = sum(w[i][j] * p[i][j] for i in range(2) for j in range(2)) / (1 - p_dk)
    p_e = expected / (1 - p_dk) ** 2
    kappa = (observed - p_e) / p_e
    value = (1 + p_dk + (1 - p_dk) * kappa) / 2
    numerator = 0.0
    for i in range(2):
        for j in range(2):
            e = sum(w[r][j] * row[r] + w[i][r] * named[r] for r in range(2))
            numerator += p[i][j] * (1 - p_dk) ** 2 * ((1 - p_dk) * w[i][j] - (1 + kappa) * e) ** 2
    v1 = numerator / (4 * expected**2)
    v2 = p_dk * (1 - p_dk) - (1 - p_dk) * (1 + kappa) * (p_dk + (1 - p_dk) * (1 + kappa) / 4)
    return Estimate(value=value, se=math.sqrt(max((v1 + v2) / n, 0.0)))


def pooled_distribution(table: Table) -> dict[str, int]:
    """Counts of each answer over every arm together: what a blinded role may see (it names no arm's results)."""
    pooled: dict[str, int] = {}
    for row in table.values():
        for option, n in row.items():
            pooled[option] = pooled.get(option, 0) + int(n)
    return pooled
