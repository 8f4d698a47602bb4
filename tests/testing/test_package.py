"""hookhub.testing ships with the runtime but stays out of it, and pytest finds its plugin through the entry point."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import hookhub.testing

SRC = Path(hookhub.testing.__file__).parents[1]


def test_the_pytest_plugin_is_registered() -> None:
    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "hookhub"]
    assert plugin.value == "hookhub.testing.pytest_plugin"


def test_hookhubs_own_code_never_imports_the_testing_helpers() -> None:
    importing = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "testing" not in path.relative_to(SRC).parts[:1]
        and re.search(r"^\s*(from|import) hookhub\.testing|from hookhub import testing", path.read_text(), re.M)
    ]
    assert importing == []


def test_every_name_it_offers_is_there() -> None:
    for name in hookhub.testing.__all__:
        assert getattr(hookhub.testing, name) is not None
