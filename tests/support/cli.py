"""Running ``hookhub <command>`` in the test process, as ``manage.py hookhub`` does (``call_command``), or as the
gateway's console script in a process of its own (``gateway_cli``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

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


def gateway_cli(tmp_path: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """``hookhub <args>`` as the gateway's console script runs it, in a process of its own: the gateway's settings
    (read from ``environ`` on top of this process's environment, without ``DATABASE_URL``) and a data dir in
    ``tmp_path``."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hookhub.server.settings", "HOOKHUB_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "hookhub.server.cli", *args]
    return subprocess.run(command, env=env | environ, capture_output=True, text=True, timeout=60, check=False)
