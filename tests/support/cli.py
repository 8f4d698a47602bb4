"""Running ``hookhub <command>`` in the test process, as ``manage.py hookhub`` does (``call_command``)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command


def run_both(*args: str) -> tuple[str, str]:
    """The command's stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("hookhub", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run(*args: str) -> str:
    """The command's stdout (its stderr is captured and dropped)."""
    return run_both(*args)[0]


def fails(message: str, *args: str) -> str:
    """The command refuses with a ``CommandError`` containing ``message``; returns the error's text."""
    with pytest.raises(CommandError) as info:
        run_both(*args)
    assert message in str(info.value)
    return str(info.value)
