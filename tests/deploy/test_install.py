"""The README's install from a built wheel: build it offline, install it into a fresh venv, run it from there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import hookhub

ROOT = Path(__file__).resolve().parents[2]
# Not the test run's DJANGO_SETTINGS_MODULE (tests.settings): the installed `hookhub` uses its own settings.
OFFLINE = {**{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}, "UV_OFFLINE": "1"}


def run(*args: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=OFFLINE, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_wheel_builds_offline_and_runs_from_a_fresh_venv(tmp_path: Path) -> None:
    run("uv", "build", "--wheel", "--out-dir", tmp_path / "dist")
    (wheel,) = (tmp_path / "dist").glob("hookhub-*.whl")
    # The dependencies as the lock pins them, so that the install resolves offline from the cache.
    lock = tmp_path / "pylock.toml"
    run("uv", "export", "--frozen", "--no-dev", "--no-emit-project", "--format", "pylock.toml", "-q", "-o", lock)
    venv = tmp_path / "venv"
    run("uv", "venv", "-q", venv)
    python = venv / "bin" / "python"
    run("uv", "pip", "install", "-q", "--offline", "--python", python, "-r", lock)
    run("uv", "pip", "install", "-q", "--offline", "--no-deps", "--python", python, wheel)

    work = tmp_path / "work"  # not the checkout, so that `import hookhub` cannot find src/
    work.mkdir()
    where, version = run(python, "-c", "import hookhub; print(hookhub.__file__, hookhub.__version__)", cwd=work).split()
    assert where.startswith(str(venv))
    assert version.strip() == hookhub.__version__
    assert run(venv / "bin" / "hookhub", "--version", cwd=work).startswith(f"hookhub {hookhub.__version__} (Django ")
    assert "serve" in run(venv / "bin" / "hookhub", "help", cwd=work)
