"""The records of a sweep stream (kind ``sweep``): one start, one per trial, one end.

A sweep's stream is its own kind, so ``replay sessions`` never lists it and
``replay sweeps`` does. ``SweepStarted`` holds everything the result depends on (the
card's text and recorded path, the data's hash, the space, the search and its seed),
so a sweep run again with the same inputs finds its stream and resumes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from replay.cards.params import Number

KIND: Final = "sweep"


class SweepStarted(msgspec.Struct, tag=True, frozen=True):
    sweep_id: str
    card_path: str
    card_text: str
    card_hash: str
    data_path: str
    data_hash: str
    candles: int
    space: dict[str, list[Number]]
    where: list[str]
    search: str  # grid | random | optuna
    trials: int  # how many trials the search runs
    batch: int  # optuna's ask/tell batch size
    seed: int
    objective: str
    min_trades: int
    balance: str
    version: str
    stamps: str = "start"  # how the data file's bars were read (replay run --stamps)
    gaps: str = "fail"
    walk_forward: int = 0  # folds; trials is then per fold
    rolling: bool = False


class TrialDone(msgspec.Struct, tag=True, frozen=True):
    number: int  # from 1, in the order the search proposed it
    params: dict[str, Number]
    session_id: str
    fingerprint: str = ""
    metrics: dict[str, float] = {}
    returns: list[float] = []  # the equity curve's returns at RETURN_POINTS even steps
    skipped: str = ""  # why it did not run (a --where rule)
    fold: int = 0  # walk-forward fold (0: the whole data)
    test: bool = False  # a fold's out-of-sample run of the params chosen on its train window
    rows: list[int] = []  # fold trials: candle rows [first, last) and the first warm-up row


class SweepFinished(msgspec.Struct, tag=True, frozen=True):
    best: int  # the best trial's number, 0 when no trial qualified
    trials: int


Record = SweepStarted | TrialDone | SweepFinished
_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Record)


def encode(record: Record) -> bytes:
    return _encoder.encode(record)


def decode(data: bytes) -> Record:
    return _decoder.decode(data)


def decode_all(items: Iterable[tuple[int, bytes]]) -> list[Record]:
    return [decode(raw) for _, raw in items]
