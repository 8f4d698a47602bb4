"""What a scenario produces: measurements of each system, the checks against the targets, and how they were made."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

TIMES = "\u00d7"  # the multiplication sign of a ratio


@dataclass
class Measurement:
    """One figure of one system: ``hookhub`` or a labelled baseline."""

    system: str
    metric: str
    value: float
    unit: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Check:
    """One target of the issue (e.g. ingest at least twice the seed receiver's rate): the value, and if it is met."""

    label: str
    value: float
    target: float
    higher_is_better: bool = True
    unit: str = TIMES

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    @property
    def target_text(self) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        return f"{sign} {fmt(self.target)}{self.unit if self.unit == TIMES else ' ' + self.unit}"

    @property
    def value_text(self) -> str:
        return f"{fmt(self.value)}{self.unit if self.unit == TIMES else ' ' + self.unit}"


@dataclass
class ScenarioResult:
    name: str
    title: str
    measurements: list[Measurement] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    profile: str = ""
    error: str = ""
    seconds: float = 0.0
    skipped: str = ""

    def measure(self, system: str, metric: str, value: float, unit: str, **detail: Any) -> Measurement:
        m = Measurement(system, metric, value, unit, detail)
        self.measurements.append(m)
        return m

    def check(
        self, label: str, value: float, target: float, *, higher_is_better: bool = True, unit: str = TIMES
    ) -> Check:
        c = Check(label, value, target, higher_is_better, unit)
        self.checks.append(c)
        return c


def fmt(value: float) -> str:
    """Three significant figures, thousands separated: 1,234 / 12.3 / 0.512."""
    if math.isnan(value):
        return "n/a"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")
