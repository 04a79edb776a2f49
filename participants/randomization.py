"""Stratified permuted-block allocation lists (pure; no database).

A seeded generator makes a list reproducible: the same arms, strata, block sizes, length and seed give the same
list, so a statistician can regenerate and check it. The seed is as secret as the list itself.

Concealment: each block's size is drawn at random from the sizes given, and by default those are two sizes of at
least 4 (``default_block_sizes``): with a single size, or blocks of 2, anyone who knows past arms can tell the last
arm of a block with certainty. Block sizes and block numbers are for the people who manage the list only.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    stratum: str
    sequence: int
    block: int
    arm: str


class AllocationSpecError(ValueError):
    pass


# The smallest block size that does not give the next allocation away too often.
MIN_CONCEALED_BLOCK = 4


def default_block_sizes(arm_count: int) -> list[int]:
    """Two block sizes, each a multiple of the number of arms and at least 4: [4, 6] for two arms, [6, 9] for
    three, [4, 8] for four. A block's size is drawn at random from them."""
    smallest = arm_count * max(1, -(-MIN_CONCEALED_BLOCK // arm_count))
    return [smallest, smallest + arm_count]


def weak_block_sizes(block_sizes: list[int]) -> str | None:
    """Why these block sizes are predictable (a single size, or one smaller than 4), or None when they are not."""
    sizes = sorted(set(block_sizes))
    if not sizes:
        return None
    small = [size for size in sizes if size < MIN_CONCEALED_BLOCK]
    if small:
        return f"block size(s) {', '.join(map(str, small))} smaller than {MIN_CONCEALED_BLOCK}"
    if len(sizes) == 1:
        return f"a single fixed block size ({sizes[0]})"
    return None


def block_sizes_of(slots: list[Slot]) -> list[int]:
    """The sizes of the numbered blocks of a list (an imported list may number none: then empty)."""
    counts: dict[tuple[str, int], int] = {}
    for slot in slots:
        if slot.block:
            counts[(slot.stratum, slot.block)] = counts.get((slot.stratum, slot.block), 0) + 1
    return sorted(set(counts.values()))


def generate(
    *, arms: list[str], strata: list[str], block_sizes: list[int] | None = None, per_stratum: int, seed: str
) -> list[Slot]:
    """The list; ``block_sizes`` None means ``default_block_sizes(len(arms))``."""
    if len(arms) < 2:
        raise AllocationSpecError("a study needs at least two arms to randomize")
    if block_sizes is None:
        block_sizes = default_block_sizes(len(arms))
    if not strata:
        raise AllocationSpecError("give at least one stratum")
    if not block_sizes or any(size <= 0 or size % len(arms) for size in block_sizes):
        raise AllocationSpecError(f"every block size must be a positive multiple of the number of arms ({len(arms)})")
    if per_stratum <= 0:
        raise AllocationSpecError("per_stratum must be positive")
    rng = random.Random(f"{seed}")  # seeded on purpose: the list must be reproducible from its seed
    slots: list[Slot] = []
    for stratum in strata:
        sequence = 0
        block = 0
        while sequence < per_stratum:
            block += 1
            size = rng.choice(block_sizes)
            contents = [arm for arm in arms for _ in range(size // len(arms))]
            rng.shuffle(contents)
            for arm in contents:
                sequence += 1
                slots.append(Slot(stratum, sequence, block, arm))
    return slots


def parse_csv(text: str, *, arms: list[str]) -> list[Slot]:
    """Read a statistician's list: columns stratum, sequence, arm (block optional). Errors name the line."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"stratum", "sequence", "arm"} - set(reader.fieldnames or [])
    if missing:
        raise AllocationSpecError(f"the CSV lacks column(s): {', '.join(sorted(missing))}")
    slots: list[Slot] = []
    seen: set[tuple[str, int]] = set()
    errors: list[str] = []
    for line_no, row in enumerate(reader, start=2):
        stratum = (row.get("stratum") or "").strip()
        arm = (row.get("arm") or "").strip()
        try:
            sequence = int(row.get("sequence") or "")
            block = int(row.get("block") or 0)
        except ValueError:
            errors.append(f"line {line_no}: sequence and block must be whole numbers")
            continue
        if not stratum:
            errors.append(f"line {line_no}: stratum is empty")
        if arm not in arms:
            errors.append(f"line {line_no}: unknown arm {arm!r} (expected one of {', '.join(arms)})")
        if (stratum, sequence) in seen:
            errors.append(f"line {line_no}: sequence {sequence} repeats in stratum {stratum!r}")
        seen.add((stratum, sequence))
        slots.append(Slot(stratum, sequence, block, arm))
    if not slots and not errors:
        errors.append("the CSV holds no rows")
    if errors:
        raise AllocationSpecError("; ".join(errors[:20]))
    return slots
