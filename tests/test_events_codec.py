"""Every event type round-trips through the log's codec byte for byte, and old logs
(which lack fields added later with defaults) still decode."""

from __future__ import annotations

import math
import types
import typing
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import (
    DERIVED_TYPES,
    EVENT_BY_NAME,
    EVENT_TYPES,
    INPUT_TYPES,
    EventBase,
    decode,
    encode,
    encode_into,
    to_dict,
)

INT64 = st.integers(-(2**63), 2**63 - 1)


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy for one field type of an event (ints within int64, any floats)."""
    if tp is int:
        return INT64
    if tp is bool:
        return st.booleans()
    if tp is float:
        return st.floats(allow_nan=True, allow_infinity=True)
    if tp is str:
        return st.text(max_size=30)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([strategy_for(a) for a in typing.get_args(tp)])
    if origin is dict:
        key, value = typing.get_args(tp)
        return st.dictionaries(strategy_for(key), strategy_for(value), max_size=4)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return struct_strategy(tp)
    raise AssertionError(f"no strategy for field type {tp!r}: extend strategy_for")


def struct_strategy(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: strategy_for(hints[f.name]) for f in msgspec.structs.fields(cls)}
    return st.builds(cls, **fields)


any_event = st.one_of([struct_strategy(t) for t in EVENT_TYPES])


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN (floats are only in indicators/intents)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, msgspec.Struct):
        return type(a) is type(b) and all(
            same(getattr(a, f), getattr(b, f)) for f in a.__struct_fields__
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b) and type(a) is type(b)


@settings(max_examples=300, deadline=None)
@given(event=any_event)
def test_every_event_round_trips_byte_for_byte(event: EventBase) -> None:
    data = encode(event)
    back = decode(data)
    assert type(back) is type(event)
    assert same(back, event)
    assert encode(back) == data
    assert decode(memoryview(data)) == back or same(decode(memoryview(data)), back)


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_each_type_encodes_as_a_tagged_array(cls: type[EventBase], data: st.DataObject) -> None:
    """The file format: [tag, ts, fields...] with the class name as the tag."""
    event = data.draw(struct_strategy(cls))
    raw = msgspec.msgpack.decode(encode(event))
    assert raw[0] == cls.__name__
    assert raw[1] == event.ts
    assert len(raw) == 1 + len(cls.__struct_fields__)
    buffer = bytearray()
    encode_into(event, buffer)
    assert bytes(buffer) == encode(event)
    assert to_dict(event)["type"] == cls.__name__


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_old_logs_without_trailing_defaulted_fields_still_decode(
    cls: type[EventBase], data: st.DataObject
) -> None:
    """Schema evolution: a log written before a defaulted field was appended lacks it."""
    sample = data.draw(struct_strategy(cls))
    raw = msgspec.msgpack.decode(encode(sample))
    defaults = msgspec.structs.fields(cls)
    for dropped, field in enumerate(reversed(defaults), start=1):
        if field.required:
            break
        old = msgspec.msgpack.encode(raw[: len(raw) - dropped])
        back = decode(old)
        assert type(back) is cls
        for f in defaults[len(defaults) - dropped :]:
            expected = f.default if f.default is not msgspec.NODEFAULT else f.default_factory()
            assert same(getattr(back, f.name), expected)


def test_type_tables_are_consistent() -> None:
    assert set(DERIVED_TYPES) | set(INPUT_TYPES) == set(EVENT_TYPES)
    assert not set(DERIVED_TYPES) & set(INPUT_TYPES)
    assert all(EVENT_BY_NAME[t.__name__] is t for t in EVENT_TYPES)
    assert len(EVENT_BY_NAME) == len(EVENT_TYPES)  # tags are unique


def test_garbage_is_a_decode_error_not_an_event() -> None:
    for bad in (b"", b"\xc1", msgspec.msgpack.encode(["NoSuchEvent", 1]), b"\x93\x01\x02\x03"):
        with pytest.raises(msgspec.DecodeError):
            decode(bad)
