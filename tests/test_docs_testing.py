"""docs/testing.md's code blocks are tests/test_docs_testing_examples.py, in order, so that every one of them runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def code(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_page_blocks_are_the_examples_module() -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "testing.md").read_text(), re.DOTALL)
    assert len(blocks) >= 2
    module = (ROOT / "tests" / "test_docs_testing_examples.py").read_text()
    assert code("\n".join(blocks)) == code(module)
