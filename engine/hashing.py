"""The engine state's hash: sha256 of its canonical snapshot bytes (see ``engine.state``)."""

from __future__ import annotations

import hashlib

from engine.state import EngineState, encode_state


def state_hash(state: EngineState) -> str:
    """Hex sha256 of the state's bytes; equal states give equal hashes on every run."""
    return hashlib.sha256(encode_state(state)).hexdigest()
