"""The gateway reads ``HOOKHUB_ALLOWED_DESTINATION_NETWORKS`` from its environment, and its checks refuse a bad one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import gateway_cli

pytestmark = pytest.mark.slow  # runs the gateway's CLI in a real process


def hookhub(tmp_path: Path, networks: str, *args: str) -> subprocess.CompletedProcess[str]:
    return gateway_cli(tmp_path, *args, HOOKHUB_ALLOWED_DESTINATION_NETWORKS=networks)


def test_the_gateway_allows_the_networks_of_its_environment(tmp_path: Path) -> None:
    script = "from hookhub.outbound.ssrf import check_host; print(check_host('10.2.0.15'), check_host('10.3.0.1'))"
    result = hookhub(tmp_path, "10.2.0.0/16, fd00:2::/32", "shell", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "None private address"


def test_a_malformed_network_stops_the_gateway_with_e012(tmp_path: Path) -> None:
    result = hookhub(tmp_path, "10.2.0.0/16,intranet", "check")
    assert result.returncode != 0
    assert "hookhub.E012" in result.stderr
    assert "'intranet' is not a network" in result.stderr
