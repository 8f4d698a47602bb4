"""The gateway's reply settings come from its environment (``HOOKHUB_REPLY_DEADLINE``, ``HOOKHUB_REPLY_FUNCTIONS``),
checked as the same settings in a project's settings module are (``hookhub.E020``, ``hookhub.E022``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import gateway_cli

pytestmark = pytest.mark.slow  # runs the gateway's CLI in a real process


hookhub = gateway_cli


def test_the_environment_sets_the_reply_deadline_and_functions(tmp_path: Path) -> None:
    code = (
        "import json; from hookhub.conf import conf; "
        "print(json.dumps([conf.REPLY_DEADLINE, sorted(conf.REPLY_FUNCTIONS)]))"
    )
    environ = {"HOOKHUB_REPLY_DEADLINE": "1.5", "HOOKHUB_REPLY_FUNCTIONS": " json.dumps, json.loads ,"}
    assert hookhub(tmp_path, "migrate", "-v0", **environ).returncode == 0
    result = hookhub(tmp_path, "shell", "-c", code, **environ)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [1.5, ["json.dumps", "json.loads"]]
    assert hookhub(tmp_path, "check", **environ).returncode == 0


def test_bad_values_are_named_by_the_checks(tmp_path: Path) -> None:
    result = hookhub(tmp_path, "check", HOOKHUB_REPLY_DEADLINE="soon", HOOKHUB_REPLY_FUNCTIONS="no.such.function")
    assert result.returncode != 0
    assert "hookhub.E020" in result.stderr
    assert "'soon'" in result.stderr
    assert "hookhub.E022" in result.stderr
