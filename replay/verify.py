"""``replay verify``: re-fold a session's inputs and check every derived event byte for byte.

The log interleaves inputs (candles, venue answers, session events) with the events
the engine derived from each of them, in the order the runner appended them: an
input, then exactly its derived events. Verification rebuilds the strategy from the
IdeaCard text stored in ``SessionStarted``, folds every input through the current
engine, and compares the re-derived events (checkpoints and their state hashes
included) with the logged ones. The hash chain of the stream is checked first, so
an edited record is reported even when it is an input.

A log keeps the engine version that wrote it (``SessionStarted.version``). When that is
not this engine's version, the result says so (``version_note``: "written by engine
version X; this is Y"), and a divergence carries the note in its reason: the rules that
derive events may have changed between the two versions, so a divergence there is not by
itself a sign of a damaged log.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from engine.events import EventBase, decode
from eventstore import EventStore, LogCorruptError
from eventstore.checked import check_stream
from replay import __version__
from replay.core import Divergence, refold

__all__ = ["Divergence", "VerifyResult", "read_session", "verify_session", "version_note"]


class VerifyResult(msgspec.Struct):
    session_id: str
    ok: bool
    events: int = 0
    inputs: int = 0
    derived: int = 0
    checkpoints: int = 0
    fingerprint: str = ""
    divergence: Divergence | None = None
    written_by: str = ""  # the engine version in the log's SessionStarted
    engine_version: str = __version__
    version_note: str = ""  # non-empty when the two differ


def version_note(written_by: str) -> str:
    """ "written by engine version X; this is Y", or "" when the log is this version's."""
    if written_by == __version__:
        return ""
    return f"written by engine version {written_by or '(none recorded)'}; this is {__version__}"


def _diverged(result: VerifyResult, divergence: Divergence) -> VerifyResult:
    if result.version_note:
        divergence.reason = f"{divergence.reason} ({result.version_note})"
    result.divergence = divergence
    return result


def read_session(store: EventStore, session_id: str) -> Iterator[tuple[int, EventBase]]:
    """Decode a stream's records once its hash chain checks (``eventstore.checked``: cached
    while the store is unchanged); a broken chain or undecodable bytes are a
    ``LogCorruptError`` naming the seq."""
    check_stream(store, session_id)
    stream = store.stream(session_id)
    for seq, raw in stream.read():
        try:
            yield seq, decode(raw)
        except msgspec.DecodeError as exc:
            raise LogCorruptError(str(store.path), f"undecodable event: {exc}", seq=seq) from None


def verify_session(store: EventStore, session_id: str) -> VerifyResult:
    """Check the hash chain, then refold the session with ``verify`` (``replay.core``)."""
    result = VerifyResult(session_id=session_id, ok=False)
    stream = store.stream(session_id)
    try:
        result.fingerprint = stream.verify_chain()
    except LogCorruptError as exc:
        return _diverged(result, Divergence(seq=exc.seq or 0, reason=f"hash chain broken: {exc}"))
    core, done = refold(stream.read(), verify=True, source=f"{session_id}:card")
    if core is not None:
        result.written_by = core.started.version
        result.version_note = version_note(core.started.version)
    result.events, result.inputs, result.derived = done.events, done.inputs, done.derived
    result.checkpoints = done.checkpoints
    if done.divergence is not None:
        return _diverged(result, done.divergence)
    result.ok = True
    return result
