"""docs/testing.md's examples in a fresh Django project: ``import hookhub.testing`` works there, the pytest plugin
is loaded through its entry point, and every example passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_docs_examples_pass_in_a_fresh_project(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HOOKHUB_", "PYTEST_"))}
    env.pop("PYTHONPATH", None)
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(tmp_path)], check=True, env=env, timeout=60
    )
    settings = tmp_path / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + '\nINSTALLED_APPS += ["hookhub"]\n')
    urls = tmp_path / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        + '\nfrom django.urls import include\n\nurlpatterns += [path("webhooks/", include("hookhub.urls"))]\n'
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = mysite.settings\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_webhooks.py").write_text((ROOT / "tests" / "test_docs_testing_examples.py").read_text())

    # Plugin autoloading stays on (it is how hookhub's fixtures arrive); the heavy ones of our dev tools are left out.
    plugins = ["no:cacheprovider", "no:randomly", "no:schemathesis", "no:hypothesispytest", "no:anyio"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *(f"-p{p}" for p in plugins)],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
