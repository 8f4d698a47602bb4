"""What limits each scenario whose target is missed, and what was tried: written from the profiles and the
diagnosis runs of the harness, shown on the page under a scenario only when one of its checks is not met."""

from __future__ import annotations

ANALYSIS: dict[str, str] = {}
