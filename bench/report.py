"""The page: a summary table of every check, the machine and the versions, then each scenario's figures, notes,
plots, profile and exact commands."""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from .analysis import ANALYSIS
from .model import ScenarioResult, fmt
from .proc import REPO


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _command_output(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (result.stdout or result.stderr).strip()


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _postgres_version(url: str | None) -> str:
    if not url:
        return "not available"
    try:
        import psycopg

        with psycopg.connect(url.rpartition("/")[0] + "/postgres", connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "unknown"
    except Exception:
        return "not available"


def machine(pg_url: str | None) -> list[tuple[str, str]]:
    wrk_line = _command_output(["wrk", "--version"]).splitlines()
    commit = _command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    return [
        ("CPU", f"{_cpu()}: {os.cpu_count()} CPUs, nproc {len(os.sched_getaffinity(0))}"),
        ("memory", _memory()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("hookhub", f"{_version('hookhub')} ({commit or 'unknown commit'})"),
        ("Django", _version("django")),
        ("granian", _version("granian")),
        ("aiohttp", _version("aiohttp")),
        ("psycopg", _version("psycopg")),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", _postgres_version(pg_url)),
        ("wrk", wrk_line[0] if wrk_line else "not installed"),
        ("django-outbound-webhooks", _version("django-outbound-webhooks")),
        ("py-spy", _version("py-spy")),
        ("matplotlib", _version("matplotlib")),
    ]


def _status(result: ScenarioResult) -> str:
    if result.skipped:
        return "skipped"
    if result.error:
        return "error"
    return ""


def summary_rows(results: list[ScenarioResult]) -> list[str]:
    rows = ["| scenario | check | measured | target | met |", "|---|---|---:|---:|:---:|"]
    for r in results:
        status = _status(r)
        if status or not r.checks:
            reason = (r.skipped or (r.error.strip().splitlines() or ["error"])[-1]) if status else "no check"
            rows.append(f"| [{r.name}](#{r.name}) | {status or 'n/a'}: {_cell(reason[:120])} | | | — |")
            continue
        for c in r.checks:
            met = "yes" if c.met else "**no**"
            rows.append(f"| [{r.name}](#{r.name}) | {c.label} | {c.value_text} | {c.target_text} | {met} |")
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _details(detail: dict[str, object]) -> str:
    return ", ".join(f"{k}: {fmt(v) if isinstance(v, float) else v}" for k, v in detail.items())


def scenario_section(r: ScenarioResult) -> list[str]:
    out = [f'<a id="{r.name}"></a>', "", f"### {r.name}: {r.title}", ""]
    if r.skipped:
        return [*out, f"Skipped: {r.skipped}.", ""]
    if r.error:
        out += ["Error:", "", "```text", r.error.strip()[-3000:], "```", ""]
    if r.measurements:
        out += ["| system | figure | value | details |", "|---|---|---:|---|"]
        for m in r.measurements:
            out.append(f"| {_cell(m.system)} | {m.metric} | {fmt(m.value)} {m.unit} | {_cell(_details(m.detail))} |")
        out.append("")
    for c in r.checks:
        out.append(f"- {c.label}: **{c.value_text}** (target {c.target_text}): {'met' if c.met else '**not met**'}.")
    if r.checks:
        out.append("")
    out += [f"{note}\n" for note in r.notes]
    out += [f"![{r.name}]({p})\n" for p in r.plots]
    missed = [c for c in r.checks if not c.met]
    analysis = ANALYSIS.get(r.name)
    if missed and analysis:
        out += ["**What limits it, and what was tried.**", "", analysis.strip(), ""]
    if r.profile:
        out += ["<details><summary>Profile</summary>", "", r.profile.strip(), "", "</details>", ""]
    if r.commands:
        out += ["Commands (`$RUN` is the run's temporary directory):", "", "```console"]
        out += [f"$ {line}" for line in r.commands]
        out += ["```", ""]
    out.append(f"_{r.seconds:.0f} s._\n")
    return out


def render(results: list[ScenarioResult], *, smoke: bool, argv: list[str], pg_url: str | None, seconds: float) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    met = sum(c.met for r in results for c in r.checks)
    checks = sum(len(r.checks) for r in results)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `uv run python -m bench{' ' + ' '.join(argv) if argv else ''}` on {now} in {seconds / 60:.1f}"
        " minutes. Do not edit by hand: run it again.",
        "",
    ]
    if smoke:
        lines += ["**Smoke run**: every scenario ran for a few seconds only; these figures mean nothing.", ""]
    lines += [
        "Every figure comes from real processes on 127.0.0.1: hookhub's web processes under granian (the command "
        "`hookhub serve` runs), `hookhub worker`, the baselines in `bench/` served the same way, load from wrk or "
        "aiohttp, deliveries into an aiohttp sink (`bench/sink.py`). Each scenario runs its baselines in the same run, "
        "one after the other, on the same machine; a ratio compares figures taken minutes apart, not simultaneously.",
        "",
        "Baselines: the **seed receiver** (the naive Django view hookhub grew from: token compare, a delete of old "
        "messages, `json.loads`, one ORM insert, an empty atomic block, all in the request), a **do-nothing view** "
        "(ceiling) on the same granian command, a **raw aiohttp sender** (ceiling for deliveries: one keep-alive "
        "session, 100 in flight, no database), and **django-outbound-webhooks 0.4** (peer), set up as its "
        "documentation says.",
        "",
        f"## Summary: {met} of {checks} checks met",
        "",
        *summary_rows(results),
        "",
        "## Machine and versions",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {_cell(v)} |" for k, v in machine(pg_url)],
        "",
        "Both sides share the machine: on 2 cores, wrk or the sink take CPU from the system under test.",
        "",
        "## Scenarios",
        "",
    ]
    for r in results:
        lines += scenario_section(r)
    return "\n".join(lines).rstrip() + "\n"


# Merging a partial run into the page (``--merge``) ---------------------------------------------------------------

_SUMMARY = "## Summary: "
_MACHINE = "## Machine and versions"
_SCENARIOS = "## Scenarios"
_ANCHOR = re.compile(r'^<a id="([^"]+)"></a>$', re.MULTILINE)
_ROW = re.compile(r"^\| \[([^\]]+)\]\(#[^)]*\) \|")


def _parts(page: str) -> tuple[str, list[str], str, dict[str, str]]:
    """(head, summary rows, machine block, scenario sections by name in page order) of a page ``render`` wrote."""
    head, _, rest = page.partition(_SUMMARY)
    summary, _, rest = rest.partition(_MACHINE)
    machine, _, scenarios = rest.partition(_SCENARIOS)
    rows = [line for line in summary.splitlines() if _ROW.match(line)]
    sections: dict[str, str] = {}
    starts = list(_ANCHOR.finditer(scenarios))
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(scenarios)
        sections[match.group(1)] = scenarios[match.start() : end].rstrip() + "\n"
    return head, rows, _MACHINE + machine, sections


def _generated(head: str) -> str:
    return next((line for line in head.splitlines() if line.startswith("Generated by ")), "")


def merge(old: str, new: str, order: list[str]) -> str:
    """The page ``new`` (a run of some scenarios) merged into ``old``: the scenarios of ``new`` replace theirs (rows of
    the summary and sections), every other scenario of ``old`` is kept as it was; the scenarios in ``order``, then
    any others in the order they came. The machine and versions are the new run's; the check count is recomputed."""
    if _SCENARIOS not in old or _SUMMARY not in old:
        return new
    old_head, old_rows, _, old_sections = _parts(old)
    new_head, new_rows, machine, new_sections = _parts(new)
    fresh = list(new_sections)
    sections = {**old_sections, **new_sections}
    rows: dict[str, list[str]] = {}
    for row in old_rows:
        name = _ROW.match(row).group(1)  # type: ignore[union-attr]
        if name not in fresh:
            rows.setdefault(name, []).append(row)
    for row in new_rows:
        rows.setdefault(_ROW.match(row).group(1), []).append(row)  # type: ignore[union-attr]
    names = [n for n in order if n in sections] + [n for n in sections if n not in order]
    summary_rows = [row for n in names for row in rows.get(n, [])]
    met = sum(row.endswith("| yes |") for row in summary_rows)
    checks = met + sum(row.endswith("| **no** |") for row in summary_rows)
    previous = _generated(old_head)
    note = (
        f"Merged (`--merge`): {', '.join(fresh)} from this run; every other section is kept from the page before"
        + (f" ({previous[0].lower()}{previous[1:].split(' Do not edit')[0].rstrip('.')})" if previous else "")
        + "."
    )
    lines = [
        new_head.rstrip(),
        "",
        note,
        "",
        f"{_SUMMARY}{met} of {checks} checks met",
        "",
        "| scenario | check | measured | target | met |",
        "|---|---|---:|---:|:---:|",
        *summary_rows,
        "",
        machine.strip(),
        "",
        _SCENARIOS,
        "",
        *[sections[n] for n in names],
    ]
    return "\n".join(lines).rstrip() + "\n"
