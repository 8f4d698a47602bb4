"""bench.capacity's pure parts: WAL positions compare as numbers, the statement counts of every process add up, and
partitioned runs' phases are kept apart from the others'."""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path

import pytest
from bench.capacity import PARTITIONED, Options, lsn, main, read_statements

# matplotlib's first use on a machine lists its fonts by running fc-list, a process, which a test not marked slow may
# not start (tests/conftest.py): build that cache here, at collection, where the rule does not apply.
with contextlib.suppress(ImportError):
    import matplotlib.font_manager  # noqa: F401


def test_wal_positions_compare_as_numbers() -> None:
    assert lsn("0/EEBAEC38") == 0xEEBAEC38
    assert lsn("1/0") > lsn("0/FFFFFFFF")


def test_statement_counts_of_every_process_add_up(tmp_path: Path) -> None:
    (tmp_path / "101").write_bytes(struct.pack("<q", 7))
    (tmp_path / "102").write_bytes(struct.pack("<q", 35))
    (tmp_path / "103").write_bytes(b"")  # made, nothing counted yet
    assert read_statements(str(tmp_path)) == 42


def test_partitioned_phases_are_named_apart_and_replotted_beside_the_direct_ones(tmp_path: Path) -> None:
    """A ``--partitioned`` run's phases carry a suffix of their own, so that ``--replot`` of a run without and a run
    with it draws both (a later file's phase replaces one of the same name only)."""
    pytest.importorskip("matplotlib")
    assert Options().suffix == ""
    assert Options(partitioned=True).suffix == PARTITIONED
    figures = {"statements": 0.5, "WAL bytes": 4000.0, "database CPU µs": 300.0}
    for name, suffix in (("plain.json", ""), ("partitioned.json", PARTITIONED)):
        phases = [{"name": kind + suffix, "per_operation": figures} for kind in ("receive", "publish", "deliver")]
        (tmp_path / name).write_text(json.dumps({"phases": phases}))
    page = tmp_path / "docs" / "scaling.md"
    argv = ["--replot", str(tmp_path / "plain.json"), str(tmp_path / "partitioned.json"), "--page", str(page)]
    assert main(argv) == 0
    assert (page.parent / "images" / "capacity-per-operation.png").stat().st_size > 0
