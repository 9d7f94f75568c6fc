"""Long runs of the engine properties (``make soak``): the same bodies, many more examples."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import test_engine_properties as props

pytestmark = pytest.mark.soak
_soak = settings(
    max_examples=int(os.environ.get("ENGINE_SOAK_EXAMPLES", "3000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@_soak
@given(props.scripts, props.ops, props.configs)
def test_soak_refold_and_snapshot(script, plan, config) -> None:
    props.test_refold_is_deterministic_and_replays_from_a_snapshot.hypothesis.inner_test(  # type: ignore[attr-defined]
        script, plan, config
    )


@_soak
@given(props.scripts, props.ops, props.configs)
def test_soak_accounting_and_transitions(script, plan, config) -> None:
    props.test_accounting_is_exact_and_only_legal_transitions_apply.hypothesis.inner_test(  # type: ignore[attr-defined]
        script, plan, config
    )


@_soak
@given(props.scripts, props.ops, props.configs, st.randoms(use_true_random=False))
def test_soak_duplicates(script, plan, config, rnd) -> None:
    props.test_duplicated_and_shuffled_venue_events_never_double_count.hypothesis.inner_test(  # type: ignore[attr-defined]
        script, plan, config, rnd
    )


@_soak
@given(
    st.dictionaries(st.integers(0, 20), st.lists(props.garbage_intents, min_size=1, max_size=3)),
    st.lists(props.garbage_events, min_size=10, max_size=200),
)
def test_soak_garbage(script, events) -> None:
    props.test_garbage_never_crashes_the_fold_nor_breaks_the_books.hypothesis.inner_test(  # type: ignore[attr-defined]
        script, events
    )
