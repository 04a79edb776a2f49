"""What the staff pages' inline SVG charts share: coordinates written as text (a template would localise a float's
decimal point), tick steps, and the plot area's geometry from a chart's size and margins."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

# Tick steps for an axis of days (a week, a fortnight, four weeks, ...) and for an axis of counts.
DAY_STEPS = (1, 2, 7, 14, 28, 56, 91, 182, 365, 730)
COUNT_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)


def coord(value: float) -> str:
    return f"{value:.1f}"


def tick_step(span: float, most: int, steps: Sequence[int]) -> int:
    """The smallest step of ``steps`` that puts at most ``most`` ticks on ``span``."""
    for step in steps:
        if span / step <= most:
            return step
    return math.ceil(span / most)


class PlotFrame:
    """The plot area of a chart ``width`` x ``height`` with the class's margins, and where its axis labels go."""

    width: int
    height: int
    LEFT: ClassVar[int]
    RIGHT: ClassVar[int]
    TOP: ClassVar[int]
    BOTTOM: ClassVar[int]

    @property
    def plot_left(self) -> str:
        return coord(self.LEFT)

    @property
    def plot_right(self) -> str:
        return coord(self.width - self.RIGHT)

    @property
    def plot_top(self) -> str:
        return coord(self.TOP)

    @property
    def plot_bottom(self) -> str:
        return coord(self.height - self.BOTTOM)

    @property
    def tick_y(self) -> str:
        return coord(self.height - self.BOTTOM + 4)

    @property
    def x_label_y(self) -> str:
        return coord(self.height - self.BOTTOM + 16)

    @property
    def axis_title_y(self) -> str:
        return coord(self.height - 4)

    @property
    def axis_title_x(self) -> str:
        return coord((self.LEFT + self.width - self.RIGHT) / 2)
