"""``replay.memory.trim``: the heap's freed small blocks go back to the system."""

from __future__ import annotations

import ctypes.util
import os
import sys

import pytest

from replay.memory import fix_mmap_threshold, trim

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="malloc_trim is glibc's",
)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@glibc
def test_trim_returns_freed_heap_blocks_to_the_system() -> None:
    fix_mmap_threshold()  # blocks under 256 KiB come from the heap, as the CSV reader's do
    blocks, kept = [], []
    for _ in range(800):  # 80 MB of heap, each free block walled in by a small live one
        blocks.append(bytearray(b"x" * 100_000))
        kept.append(bytearray(b"y" * 1000))
    grown = _rss_mb()
    del blocks  # free() alone usually keeps them (nothing to merge into the heap's top)
    freed = _rss_mb()
    assert isinstance(trim(), bool)
    assert _rss_mb() < grown - 60, (grown, freed, _rss_mb())
    assert _rss_mb() <= freed + 1
    assert all(k[0] == ord("y") for k in kept)
