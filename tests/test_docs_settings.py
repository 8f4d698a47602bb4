"""docs/settings.md has a row for every HOOKHUB key and every environment variable the gateway reads, and no more."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hookhub import checks
from hookhub.conf import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "settings.md"
SRC = ROOT / "src" / "hookhub"
ENV_NAME = re.compile(r"HOOKHUB_[A-Z0-9_]+|DATABASE_URL|DJANGO_SETTINGS_MODULE")


def sections() -> dict[str, dict[str, str]]:
    """The page's table rows by section: {heading: {first cell's name: the whole row}}."""
    out: dict[str, dict[str, str]] = {}
    heading = ""
    for line in PAGE.read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:]
            out[heading] = {}
        elif m := re.match(r"\|\s*`([A-Z0-9_]+)`\s*\|", line):
            out[heading][m.group(1)] = line
    return out


def rows(prefix: str) -> dict[str, str]:
    (found,) = [v for k, v in sections().items() if k.startswith(prefix)]
    return found


def env_vars_in_src() -> set[str]:
    """String constants in src/ that are exactly an environment variable's name (os.environ, _flag(...) or any)."""
    names = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_NAME.fullmatch(node.value):
                names.add(node.value)
    return names


def test_every_hookhub_key_has_a_row_and_every_row_a_key() -> None:
    documented = rows("Django settings")
    assert sorted(set(DEFAULTS) - set(documented)) == [], "keys without a row in docs/settings.md"
    assert sorted(set(documented) - set(DEFAULTS)) == [], "rows for keys hookhub.conf no longer has"


def test_every_environment_variable_has_a_row_and_every_row_a_variable() -> None:
    documented = rows("Environment variables")
    read = env_vars_in_src()
    assert "DATABASE_URL" in read
    assert "HOOKHUB_SECRET_KEY" in read
    assert sorted(read - set(documented)) == [], "environment variables without a row in docs/settings.md"
    assert sorted(set(documented) - read) == [], "rows for environment variables src/ no longer reads"


def test_named_checks_exist() -> None:
    source = Path(checks.__file__).read_text()
    named = set(re.findall(r"hookhub\.[EW]\d{3}", PAGE.read_text()))
    assert named, "the page names no check"
    assert sorted(c for c in named if f'"{c}"' not in source) == []
