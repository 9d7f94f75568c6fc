"""Checks of an LMDB data file *before* liblmdb maps it.

liblmdb trusts its file: a damaged page can make it read outside the map and kill
the process with SIGSEGV/SIGBUS instead of returning an error. So the store looks
at the file first, with plain reads that cannot crash:

* ``quick_problems`` (always, microseconds): both meta pages parse (magic, version,
  page size), the committed one's last page lies inside the file (catches a
  truncated file) and the main tree's root page says it is that page.
* ``full_problems`` (~2.5 s per million records): the quick checks, then the page
  walk of ``eventstore.walk`` in a child process (py-lmdb's offline verifier over
  every reachable page, then liblmdb reading every record). A child killed by a
  signal on the way is reported as damage, so the caller never maps a file that
  liblmdb cannot read.

What is not covered: damage made after the check, while the file is mapped (a file
truncated under a running reader still kills it with SIGBUS: no process survives
that), and in-place damage of a data page at rest that leaves the inode, size,
mtime and both meta pages as they were (``eventstore.trust`` then skips the walk;
``EventStore(..., full_check=True)`` walks anyway).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
from pathlib import Path
from typing import Final

MAGIC: Final = 0xBEEFC0DE
DATA_VERSION: Final = 1  # LMDB 0.9's on-disk format
PAGE_HEADER: Final = 16
P_BRANCH: Final = 0x01
P_LEAF: Final = 0x02
P_META: Final = 0x08
P_INVALID: Final = 2**64 - 1
_U16: Final = struct.Struct("=H")
_U32: Final = struct.Struct("=I")
_U64: Final = struct.Struct("=Q")
_DB_SIZE: Final = 48  # an MDB_db record


_FLOCK: Final = struct.Struct("@hhqqi4x")  # struct flock on Linux x86-64/aarch64


def data_file(path: Path) -> Path:
    return path / "data.mdb"


def open_elsewhere(path: Path) -> bool:
    """Whether another process has the environment open (LMDB holds a shared fcntl lock
    on byte 0 of lock.mdb while open). Such a file is live, not at rest: walking it while
    a writer commits could report a torn state as damage, so the caller skips the walk.
    F_GETLK only asks; it never takes or drops a lock (this process's own are ignored).
    """
    try:
        fd = os.open(path / "lock.mdb", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0)
        l_type = _FLOCK.unpack(fcntl.fcntl(fd, fcntl.F_GETLK, probe))[0]
        return bool(l_type != fcntl.F_UNLCK)
    except OSError:
        return False
    finally:
        os.close(fd)


def _meta(buf: bytes, pgno: int) -> tuple[dict[str, int], list[str]]:
    """Parse the MDB_meta on a meta page (see mdb.c); return its fields and problems."""
    if len(buf) < PAGE_HEADER + 24 + 2 * _DB_SIZE + 16:
        return {}, [f"meta page {pgno} is truncated"]
    problems = []
    (flags,) = _U16.unpack_from(buf, 10)
    m = PAGE_HEADER
    (magic,) = _U32.unpack_from(buf, m)
    (version,) = _U32.unpack_from(buf, m + 4)
    (psize,) = _U32.unpack_from(buf, m + 24)  # mm_psize aliases the free DB's md_pad
    main = m + 24 + _DB_SIZE
    (main_root,) = _U64.unpack_from(buf, main + 40)
    (free_root,) = _U64.unpack_from(buf, m + 24 + 40)
    (last_pg,) = _U64.unpack_from(buf, main + _DB_SIZE)
    (txnid,) = _U64.unpack_from(buf, main + _DB_SIZE + 8)
    if not flags & P_META:
        problems.append(f"page {pgno} is not a meta page")
    if magic != MAGIC:
        problems.append(f"meta page {pgno} has a bad magic number {magic:#x}")
    if version != DATA_VERSION:
        problems.append(f"meta page {pgno} has data version {version}, expected {DATA_VERSION}")
    fields = {
        "psize": psize,
        "main_root": main_root,
        "free_root": free_root,
        "last_pg": last_pg,
        "txnid": txnid,
    }
    return fields, problems


def quick_problems(path: Path) -> list[str]:
    """Cheap structural checks of ``path``/data.mdb; an empty list means nothing found."""
    fd = os.open(data_file(path), os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fd_problems(fd)
    finally:
        os.close(fd)


def fd_problems(fd: int) -> list[str]:
    """The quick checks on an open data file, with ``pread`` only (no seek, no file
    object): cheap enough to run before every transaction on a held descriptor."""
    head = os.pread(fd, PAGE_HEADER + 256, 0)
    m0, problems = _meta(head, 0)
    if problems:
        return problems
    psize = m0["psize"]
    if psize < 512 or psize > 65536 or psize & (psize - 1):
        return [f"meta page 0 has an impossible page size {psize}"]
    second = os.pread(fd, PAGE_HEADER + 256, psize)
    # The size after the metas: a live writer writes pages before the meta naming
    # them, and LMDB never shrinks the file, so a sound file always holds them.
    size = os.fstat(fd).st_size
    if size < 2 * psize:
        return [f"file is shorter than its two meta pages of {psize} bytes"]
    m1, problems = _meta(second, 1)
    if problems:
        return problems
    meta = m0 if m0["txnid"] >= m1["txnid"] else m1
    pages = meta["last_pg"] + 1
    if pages * psize > size:
        return [f"file holds {size // psize} pages but the last commit uses {pages} (truncated)"]
    for name in ("main_root", "free_root"):
        root = meta[name]
        if root != P_INVALID and not 2 <= root < pages:
            problems.append(f"{name} page {root} is outside the {pages} committed pages")
    root = meta["main_root"]
    if not problems and root != P_INVALID:
        header = os.pread(fd, PAGE_HEADER, root * psize)
        (pgno,) = _U64.unpack_from(header, 0)
        (flags,) = _U16.unpack_from(header, 10)
        if pgno != root or not flags & (P_BRANCH | P_LEAF):
            problems.append(f"main tree root page {root} is not a tree page")
    return problems


def full_problems(path: Path) -> list[str]:
    """The quick checks, then the whole page walk in a child process."""
    from eventstore.walk import walk_problems

    return quick_problems(path) or walk_problems(path)


def meta_digest(path: Path) -> str:
    """A hash of both meta pages (the first 2 x 64 KiB cover them at any page size):
    they change with every commit, so a trusted stamp never rests on size and mtime alone."""
    with data_file(path).open("rb") as f:
        return hashlib.sha256(f.read(2 * 65536)).hexdigest()
