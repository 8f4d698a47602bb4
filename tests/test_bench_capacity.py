"""bench.capacity's pure parts: WAL positions compare as numbers, and the statement counts of every process add up."""

from __future__ import annotations

import struct
from pathlib import Path

from bench.capacity import lsn, read_statements


def test_wal_positions_compare_as_numbers() -> None:
    assert lsn("0/EEBAEC38") == 0xEEBAEC38
    assert lsn("1/0") > lsn("0/FFFFFFFF")


def test_statement_counts_of_every_process_add_up(tmp_path: Path) -> None:
    (tmp_path / "101").write_bytes(struct.pack("<q", 7))
    (tmp_path / "102").write_bytes(struct.pack("<q", 35))
    (tmp_path / "103").write_bytes(b"")  # made, nothing counted yet
    assert read_statements(str(tmp_path)) == 42
