"""The Trade API's own error codes (tests/fixtures/bybit_trade_ws.json) in the retry classes."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.bybit.errors import ApiError
from adapters.bybit.retry import Action, classify

CODES = json.loads((Path(__file__).parent / "fixtures" / "bybit_trade_ws.json").read_text())[
    "codes"
]


def test_trade_api_codes_are_classified_so_a_refused_write_is_resent_and_a_doubt_looked_up() -> (
    None
):
    def cls(code: int) -> Action:
        return classify(ApiError("/v5/order/create", code, CODES[str(code)]))

    assert cls(10006) is cls(10429) is cls(20003) is Action.RATE_LIMITED
    assert cls(10019) is cls(20006) is cls(10016) is Action.AMBIGUOUS
    assert cls(10003) is cls(10004) is Action.FATAL
