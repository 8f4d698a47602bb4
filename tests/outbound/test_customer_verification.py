"""The customer-side snippets of docs/sending.md, run on a real delivery, so the guide cannot drift from the code.

Each snippet is read from the guide itself (the fenced block whose first line is ``# hookhub-test: <name>`` or
``// hookhub-test: <name>``), joined to a small driver and run in its own process, as a customer would run it:
Python with this environment's interpreter and the official ``standardwebhooks`` package, Node with the official
``standardwebhooks`` npm package installed in tests/node (by ``npm ci`` when it is missing).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hookhub
from hookhub.models import Application, Endpoint
from hookhub.signing import generate_ed25519_keypair, public_key

from .conftest import Sink, deliver, recorded

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "sending.md"
NODE_PROJECT = ROOT / "tests" / "node"
PAYLOAD = {"id": "in_1042", "amount": "9.99", "currency": "EUR", "customer": "Zoë Müller €"}

PYTHON_DRIVER = """
import base64 as _b64, json as _json, sys as _sys

_results = []
for _case in _json.load(open(_sys.argv[1])):
    try:
        _payload = verify(_b64.b64decode(_case["body"]), _case["headers"], _case["secret"])
    except Exception as _exc:
        _results.append({"rejected": type(_exc).__name__})
    else:
        _results.append({"payload": _payload})
print(_json.dumps(_results))
"""

NODE_DRIVER = """
const _cases = JSON.parse(require("node:fs").readFileSync(process.argv[2], "utf8"));
const _results = _cases.map((c) => {
  try {
    return { payload: verify(Buffer.from(c.body, "base64"), c.headers, c.secret) };
  } catch (e) {
    return { rejected: e.name };
  }
});
console.log(JSON.stringify(_results));
"""


def snippet(name: str) -> str:
    """The one fenced block of the guide whose first line is the ``hookhub-test`` marker for ``name``."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", GUIDE.read_text(), flags=re.MULTILINE | re.DOTALL)
    marked = [b for b in blocks if re.fullmatch(rf"(#|//) hookhub-test: {re.escape(name)}", b.split("\n", 1)[0])]
    assert len(marked) == 1, f"docs/sending.md should have exactly one block marked {name!r}, found {len(marked)}"
    return str(marked[0])


def delivered(sink: Sink, endpoint: Endpoint) -> tuple[bytes, dict[str, str]]:
    """Publish PAYLOAD to ``endpoint`` and run the real dispatcher until the sink has the request."""
    hookhub.send("invoice.paid", PAYLOAD, application=endpoint.application)
    deliver(recorded(1))
    [request] = sink.to("/customer")
    return request.body, request.headers


def cases(body: bytes, headers: dict[str, str], key: str) -> list[dict[str, Any]]:
    """The genuine request, then forgeries each snippet must refuse."""
    signature = next(v for k, v in headers.items() if k.lower() == "webhook-signature")
    malformed = {k: ("v1" if k.lower() == "webhook-signature" else v) for k, v in headers.items()}
    return [
        {"body": body, "headers": headers, "secret": key},
        {"body": body.replace(b"9.99", b"0.01"), "headers": headers, "secret": key},
        {"body": body + b" ", "headers": headers, "secret": key},
        {"body": body, "headers": malformed, "secret": key},
        {"body": body, "headers": {k: v for k, v in headers.items() if v != signature}, "secret": key},
    ]


def run(
    command: list[str], script: str, suffix: str, all_cases: list[dict[str, Any]], tmp_path: Path, **env: str
) -> Any:
    program = tmp_path / f"verify{suffix}"
    program.write_text(script)
    data = tmp_path / "cases.json"
    data.write_text(json.dumps([c | {"body": base64.b64encode(c["body"]).decode()} for c in all_cases]))
    completed = subprocess.run(
        [*command, str(program), str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": str(Path(command[0]).parent), **env},
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def assert_accepts_only_the_genuine_request(results: list[dict[str, Any]], rejection: str) -> None:
    assert results[0] == {"payload": PAYLOAD}
    assert results[1:] == [{"rejected": rejection}] * 4


@pytest.fixture
def hmac_endpoint(sink: Sink) -> Endpoint:
    application = Application.objects.create(uid="acme")
    return Endpoint.objects.create(application=application, url=sink.url("/customer"))


@pytest.fixture
def node_modules() -> Path:
    """tests/node/node_modules, installed from the lock file when missing (a clean checkout, CI)."""
    modules = NODE_PROJECT / "node_modules"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed to test the Node snippet of docs/sending.md")
    if not (modules / "standardwebhooks" / "package.json").exists():
        subprocess.run(
            [npm, "ci", "--prefix", str(NODE_PROJECT), "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return modules


@pytest.mark.slow
def test_the_python_snippet_verifies_a_real_delivery(sink: Sink, hmac_endpoint: Endpoint, tmp_path: Path) -> None:
    body, headers = delivered(sink, hmac_endpoint)
    results = run(
        [sys.executable],
        snippet("python-verify") + PYTHON_DRIVER,
        ".py",
        cases(body, headers, hmac_endpoint.secret),
        tmp_path,
    )
    assert_accepts_only_the_genuine_request(results, "WebhookVerificationError")


@pytest.mark.slow
def test_the_node_snippet_verifies_a_real_delivery(
    sink: Sink, hmac_endpoint: Endpoint, node_modules: Path, tmp_path: Path
) -> None:
    body, headers = delivered(sink, hmac_endpoint)
    node = shutil.which("node")
    assert node is not None
    results = run(
        [node],
        snippet("node-verify") + NODE_DRIVER,
        ".cjs",
        cases(body, headers, hmac_endpoint.secret),
        tmp_path,
        NODE_PATH=str(node_modules),
    )
    assert_accepts_only_the_genuine_request(results, "WebhookVerificationError")


@pytest.mark.slow
def test_the_ed25519_snippet_verifies_a_real_delivery(sink: Sink, tmp_path: Path) -> None:
    private, public = generate_ed25519_keypair()
    application = Application.objects.create(uid="acme")
    endpoint = Endpoint.objects.create(
        application=application, url=sink.url("/customer"), scheme=Endpoint.Scheme.ED25519, secret=private
    )
    assert public_key(private) == public
    body, headers = delivered(sink, endpoint)
    results = run(
        [sys.executable],
        snippet("python-verify-ed25519") + PYTHON_DRIVER,
        ".py",
        cases(body, headers, public),
        tmp_path,
    )
    assert_accepts_only_the_genuine_request(results, "ValueError")
