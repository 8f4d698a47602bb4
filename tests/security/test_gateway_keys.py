"""The gateway's encryption key: made on first start and kept in the data dir, or given by the environment."""

from __future__ import annotations

import hashlib
import hmac
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from bench.gateway import running_gateway
from cryptography.fernet import Fernet

pytestmark = pytest.mark.slow


def test_the_gateway_keeps_its_key_and_verifies_with_encrypted_secrets(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gw:
        key_file = tmp_path / "data" / "encryption_key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        Fernet(key_file.read_text().strip())  # a valid key
        url = gw.hookhub("source", "add", "gh", "--verifier", "github", "--secret", "gw-secret-0123456789").strip()
        assert "gw-secret" not in gw.hookhub("source", "show", "gh")
        body = b'{"zen": "encrypted"}'
        signature = "sha256=" + hmac.new(b"gw-secret-0123456789", body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature, "X-GitHub-Event": "push"}
        url = url.splitlines()[-1].strip()
        status, _ = gw.post(url if url.startswith("http") else gw.base + url, body, headers)
        assert status == 200

        new = Fernet.generate_key().decode()
        gw.env["HOOKHUB_ENCRYPTION_KEYS"] = f"{new},{key_file.read_text().strip()}"
        assert "Re-encrypted 1 row(s)" in gw.hookhub("rotate-encryption-key")
        gw.env["HOOKHUB_ENCRYPTION_KEYS"] = new
        assert "[20 characters]" in gw.hookhub("source", "show", "gh")  # reads with the new key alone

        bad = {**gw.env, "HOOKHUB_ENCRYPTION_KEYS": "not-a-key"}
        command = [sys.executable, "-m", "hookhub.server.cli", "rotate-encryption-key"]
        result = subprocess.run(command, env=bad, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode != 0
        assert "hookhub.E008" in result.stderr
        assert "Traceback" not in result.stderr
