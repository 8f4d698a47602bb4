"""The ``hookhub`` console script as its users meet it: help, --version, unknown commands, the data dir rules and
one-line errors, each through a real process in a folder of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import django
import pytest

from tests.support.processes import gateway_environment

pytestmark = pytest.mark.slow


def bare_environment(tmp_path: Path) -> dict[str, str]:
    """No data dir, no database or keys from the environment: a user in a fresh folder."""
    drop = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "HOOKHUB_SECRET_KEY", "HOOKHUB_ENCRYPTION_KEYS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return env | {"HOOKHUB_DATA_DIR": str(tmp_path / ".hookhub")}


def hookhub(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookhub.server.cli", *args],
        cwd=tmp_path,
        env=env or bare_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_lists_hookhubs_commands_by_group_then_djangos(tmp_path: Path) -> None:
    result = hookhub(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    positions = [out.index(f"\n{group}:\n") for group in ("run", "receive", "send", "operate")]
    assert positions == sorted(positions)
    assert out.index("Django's management commands:") > positions[-1]
    assert "  serve                  Run the gateway: the web app and the worker together.\n" in out
    assert out.index("  source ") < out.index("\nsend:\n") < out.index("  endpoint ")
    assert "dumpdata" in out.split("Django's management commands:")[1]
    assert list(tmp_path.iterdir()) == []  # help creates nothing


def test_no_arguments_and_help_show_the_same_list(tmp_path: Path) -> None:
    assert hookhub(tmp_path).stdout == hookhub(tmp_path, "help").stdout != ""


@pytest.mark.parametrize(
    "args", [("help", "serve"), ("serve", "--help"), ("help", "migrate"), ("source", "add", "--help")]
)
def test_help_for_one_command(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = hookhub(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    name = " ".join(a for a in args if a not in ("help", "--help"))
    assert result.stdout.startswith(f"usage: hookhub {name} ")
    assert list(tmp_path.iterdir()) == []


def test_version(tmp_path: Path) -> None:
    result = hookhub(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout == (
        f"hookhub {version('hookhub')} (Django {django.get_version()}, Python {sys.version.split()[0]})\n"
    )


def test_unknown_command_suggests_the_closest(tmp_path: Path) -> None:
    result = hookhub(tmp_path, "serv")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "hookhub: unknown command 'serv'; did you mean 'serve'?\n"


def test_a_command_in_an_empty_folder_creates_nothing_and_says_so_in_one_line(tmp_path: Path) -> None:
    result = hookhub(tmp_path, "source", "list")
    assert result.returncode == 1
    assert result.stderr == (
        f'hookhub: no data dir at {tmp_path / ".hookhub"}; run "hookhub init" (or serve) here, or set '
        "HOOKHUB_DATA_DIR (or DATABASE_URL, HOOKHUB_SECRET_KEY and HOOKHUB_ENCRYPTION_KEYS)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_init_then_source_list_works_and_init_again_changes_nothing(tmp_path: Path) -> None:
    first = hookhub(tmp_path, "init")
    assert first.returncode == 0, first.stderr
    assert "migrations applied" in first.stdout
    key = (tmp_path / ".hookhub" / "encryption_key").read_text()
    assert oct((tmp_path / ".hookhub").stat().st_mode & 0o777) == "0o700"
    again = hookhub(tmp_path, "init")
    assert "(up to date)" in again.stdout
    assert (tmp_path / ".hookhub" / "encryption_key").read_text() == key
    listed = hookhub(tmp_path, "source", "list")
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "", "")


def test_a_data_dir_without_a_migrated_database_says_to_migrate(tmp_path: Path) -> None:
    (tmp_path / ".hookhub").mkdir()
    result = hookhub(tmp_path, "app", "list")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("hookhub: the database is not migrated (")
    assert result.stderr.endswith('run "hookhub migrate"\n')


def test_nan_in_a_payload_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = gateway_environment(tmp_path)
    assert hookhub(tmp_path, "app", "add", "acme", env=env).returncode == 0
    assert hookhub(tmp_path, "event-type", "add", "a.b", env=env).returncode == 0
    result = hookhub(tmp_path, "send", "acme", "a.b", '{"amount": NaN}', env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "hookhub: payload.amount: NaN is not a JSON number\n"


def test_a_bad_source_name_is_one_line(tmp_path: Path) -> None:
    env = gateway_environment(tmp_path)
    result = hookhub(tmp_path, "source", "add", "bad/name", "--verifier", "generic", env=env)
    assert result.returncode == 1
    assert result.stderr == "hookhub: A source's name is 1-100 letters, digits, _ or -, not 'bad/name'.\n"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    env = gateway_environment(tmp_path)
    result = hookhub(tmp_path, "send", "acme", env=env)
    assert result.returncode == 2
    assert "the following arguments are required" in result.stderr


@pytest.mark.django_db
def test_manage_py_hookhub_prints_the_same_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from hookhub.management.commands.hookhub import Command

    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "hookhub", "source", "add", "bad/name", "--verifier", "generic"])
    assert exited.value.code == 1
    assert capsys.readouterr().err == "hookhub: A source's name is 1-100 letters, digits, _ or -, not 'bad/name'.\n"
