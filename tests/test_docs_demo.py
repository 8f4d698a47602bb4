"""The docs' first `event-type add` works right after the quick start's `serve --demo`: the demo does not seed it."""

from __future__ import annotations

import re
from pathlib import Path

from hookhub.cli.demo import EVENT_TYPES

ROOT = Path(__file__).resolve().parent.parent


def test_first_event_type_add_example_is_not_seeded_by_the_demo() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    examples = [m.group(1) for page in pages for m in re.finditer(r"event-type add ([\w.*-]+)", page.read_text())]
    assert examples, "no `event-type add` example in the docs"
    assert examples[0] not in EVENT_TYPES
    assert "invoice.paid" in EVENT_TYPES  # what the docs send, so the demo's endpoints receive it
