"""Profiles for the page: py-spy samples a running server or worker (and its children) while the load runs, and the
folded stacks are summed into the functions that take the most time, inclusive and self."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .proc import Recorder

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path, recorder: Recorder | None = None) -> subprocess.Popen[bytes] | None:
    """Start sampling ``pid`` and its children for ``seconds`` (folded stacks to ``out``); None without py-spy."""
    exe = py_spy()
    if exe is None:
        return None
    argv = [
        exe, "record", "--pid", str(pid), "--subprocesses", "--duration", str(max(1, round(seconds))),
        "--rate", "250", "--format", "raw", "--output", str(out), "--nonblocking",
    ]  # fmt: skip
    if recorder is not None:
        recorder.add(["py-spy", *argv[1:]])
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(proc: subprocess.Popen[bytes] | None, timeout: float = 60.0) -> None:
    if proc is None:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=10)


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarize(folded: Path, *, top: int = 12, skip: tuple[str, ...] = (), own: str = "hookhub/") -> str:
    """A markdown table: hookhub's own functions with the most samples under them (inclusive), and the functions
    the samples were in (self, any code). Entry points that every stack shares are left out."""
    try:
        lines = folded.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames or any(s in stack for s in skip):
            continue
        count = int(count_text)
        total += count
        for name in {_short(f) for f in frames if own in f}:
            inclusive[name] += count
        leaf[_short(frames[-1])] += count
    if not total:
        return ""
    rows = ["| inclusive | hookhub function | | self | leaf function |", "|---:|---|---|---:|---|"]
    entry_points = ("cli/", "management/", "worker.py)", "Worker.", "run (hookhub")
    incl = [(n, c) for n, c in inclusive.most_common(top * 3) if not any(e in n for e in entry_points)][:top]
    self_ = leaf.most_common(top)
    for i in range(max(len(incl), len(self_))):
        a = f"{100 * incl[i][1] / total:.1f} % | `{incl[i][0]}`" if i < len(incl) else " | "
        b = f"{100 * self_[i][1] / total:.1f} % | `{self_[i][0]}`" if i < len(self_) else " | "
        rows.append(f"| {a} | | {b} |")
    return f"{total:,} samples (only samples with a Python stack on the CPU).\n\n" + "\n".join(rows)
