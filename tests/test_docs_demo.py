"""Every `event-type add` in the docs works right after the quick start's `serve --demo`: the demo does not seed it."""

from __future__ import annotations

import re
from pathlib import Path

from hookhub.cli.demo import EVENT_TYPES

ROOT = Path(__file__).resolve().parent.parent


def test_event_type_add_examples_are_is_not_seeded_by_the_demo() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    examples = [m.group(1) for page in pages for m in re.finditer(r"event-type add ([\w.*-]+)", page.read_text())]
    assert examples, "no `event-type add` example in the docs"
    assert sorted(set(examples) & set(EVENT_TYPES)) == []
