"""One durable commit for records of two streams of one store (a log and its side stream).

``append_together(main, items, side, side_items)`` stages ``items`` on ``main`` and
``side_items`` on ``side`` and commits both in ONE LMDB transaction (one fsync): a reader
or a reopened store sees both or neither. The writers must belong to the same store.
"""

from __future__ import annotations

from collections.abc import Sequence

import lmdb

from eventstore.errors import EventStoreError
from eventstore.writer import Writer


def append_together(
    main: Writer, items: Sequence[bytes], side: Writer, side_items: Sequence[bytes]
) -> range:
    """Append ``items`` to ``main`` and ``side_items`` to ``side`` atomically; return
    ``main``'s new seqs. Whatever either writer held pending is committed too."""
    if main._shared is not side._shared:
        raise EventStoreError("a joint commit needs two streams of the same store")
    seqs = main.stage_many(items)
    side.stage_many(side_items)
    puts = [(w, w._stage()) for w in (main, side)]

    def put(txn: lmdb.Transaction[bytes]) -> None:
        for _, fn in puts:
            if fn is not None:
                fn(txn)

    try:
        main._shared.write(put, f"append to {main.stream.name!r} and {side.stream.name!r}")
    except BaseException as exc:
        main._failed = side._failed = exc
        raise
    for w, fn in puts:
        if fn is not None:
            w._committed()
    return seqs
