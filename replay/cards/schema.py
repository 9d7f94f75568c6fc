"""The IdeaCard schema as pydantic models: structure, types, ranges, unknown keys.

Only ``symbol`` and ``blocks`` are required (``blocks`` may be left out when a Python
``strategy`` is given). Names used *inside* expressions, indicator names and their
parameters are checked by the compiler (engine.plan), which knows the registry.

Human units: money amounts and price offsets are in the quote currency (USDT), rates
are decimals (``0.00055``) or percentages (``"0.055%"``), durations are ``30s``, ``5m``,
``8h`` or integer milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine.timeframes import is_timeframe

_DURATION_RE = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Operand = Union[int, float, str]
Style = Literal["market", "limit", "iceberg", "twap"]


def _err(kind: str, message: str, expected: str, suggestion: str = "") -> PydanticCustomError:
    return PydanticCustomError(kind, message, {"expected": expected, "suggestion": suggestion})


def parse_rate(value: Any) -> int:
    """A rate as 1e-8 units: 0.00055 or "0.055%" -> 55_000 (half-even at the 8th decimal)."""
    if isinstance(value, bool):
        raise _err("rate", "not a rate", "a decimal such as 0.00055 or a percentage '0.055%'")
    text = str(value).strip()
    pct = text.endswith("%")
    try:
        d = Decimal(text[:-1].strip() if pct else text)
    except InvalidOperation:
        raise _err(
            "rate", "not a rate", "a decimal such as 0.00055 or a percentage '0.055%'"
        ) from None
    if not d.is_finite():
        raise _err("rate", "not a finite rate", "a finite decimal")
    if pct:
        d = d / 100
    return int((d * 100_000_000).to_integral_value(rounding="ROUND_HALF_EVEN"))


def parse_duration(value: Any) -> int:
    """A duration in ms: 30s, 5m, 8h, 1d, 250ms, or an integer of milliseconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = _DURATION_RE.match(str(value))
    if m is None:
        raise _err("duration", "not a duration", "e.g. 30s, 5m, 8h or milliseconds as an integer")
    return int(m.group(1)) * _DURATION_MS[m.group(2)]


#: Upper bounds that keep every number the engine derives inside a 64-bit event field
#: (money is int64 in 1e-8 units: at most ~9.2e10 USDT) and refuse absurd values at load.
MAX_MONEY = 10_000_000_000.0  # quote currency (10 billion USDT)
MAX_QTY = 1_000_000_000.0  # base currency
MAX_COUNT = 1_000_000_000  # bars, slices, checkpoint interval
MAX_TICKS = 1_000_000
MAX_DURATION_MS = 366 * 86_400_000  # a year


def _show_rate(e8: int) -> str:
    text = f"{Decimal(e8) / 1_000_000:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


def rate_range(
    lo_e8: int, hi_e8: int, *, lo_open: bool = False, hi_open: bool = False
) -> Callable[[int], int]:
    """A check that a rate (1e-8 units) is in [lo, hi]; ``*_open`` excludes that end."""

    def check(value: int) -> int:
        below = value <= lo_e8 if lo_open else value < lo_e8
        above = value >= hi_e8 if hi_open else value > hi_e8
        if below or above:
            span = f"{'(' if lo_open else '['}{_show_rate(lo_e8)}, {_show_rate(hi_e8)}"
            raise _err(
                "rate_range",
                f"rate {_show_rate(value)} out of range",
                f"a rate in {span}{')' if hi_open else ']'}",
            )
        return value

    return check


def duration_range(lo_ms: int, hi_ms: int = MAX_DURATION_MS) -> Callable[[int], int]:
    """A check that a duration is in [lo_ms, hi_ms]."""

    def check(value: int) -> int:
        if not lo_ms <= value <= hi_ms:
            raise _err(
                "duration_range",
                f"duration {value} ms out of range",
                f"a duration from {lo_ms} ms to {hi_ms // 86_400_000} days",
            )
        return value

    return check


Rate = Annotated[int, BeforeValidator(parse_rate)]
Duration = Annotated[int, BeforeValidator(parse_duration), AfterValidator(duration_range(0))]
Fee = Annotated[Rate, AfterValidator(rate_range(-100_000, 1_000_000))]  # -0.1 % (rebate)..1 %
FundingRate = Annotated[Rate, AfterValidator(rate_range(-5_000_000, 5_000_000))]  # +-5 %
FundingInterval = Annotated[
    int, BeforeValidator(parse_duration), AfterValidator(duration_range(60_000, 7 * 86_400_000))
]
MarginRate = Annotated[Rate, AfterValidator(rate_range(0, 50_000_000, lo_open=True, hi_open=True))]
LiquidationFee = Annotated[Rate, AfterValidator(rate_range(0, 10_000_000))]  # 0..10 %


def _check_tf(value: str) -> str:
    if not is_timeframe(value):
        raise _err("timeframe", "not a timeframe", "e.g. 1m, 5m, 15m, 1h, 4h, 1d")
    return value


Timeframe = Annotated[str, BeforeValidator(lambda v: _check_tf(str(v)))]


class Strict(BaseModel):
    """Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# ---------------------------------------------------------------- conditions


def _cond_tag(value: Any) -> str:
    return "<expr>" if isinstance(value, str) else "<cond>"


class HeldModel(Strict):
    for_: int = Field(alias="for", ge=1, le=MAX_COUNT)
    cond: Cond


class WithinModel(Strict):
    bars: int = Field(ge=0, le=MAX_COUNT)
    first: Cond
    then: Cond


_COND_KEYS = [
    "gt",
    "lt",
    "ge",
    "le",
    "eq",
    "ne",
    "cross_above",
    "cross_below",
    "all",
    "any",
    "not",
    "held",
    "within",
    "flat",
    "long",
    "short",
    "pending",
    "expr",
]


class CondModel(Strict):
    """Exactly one key: a comparison, a cross, a combinator, a window or a state."""

    gt: tuple[Operand, Operand] | None = None
    lt: tuple[Operand, Operand] | None = None
    ge: tuple[Operand, Operand] | None = None
    le: tuple[Operand, Operand] | None = None
    eq: tuple[Operand, Operand] | None = None
    ne: tuple[Operand, Operand] | None = None
    cross_above: tuple[Operand, Operand] | None = None
    cross_below: tuple[Operand, Operand] | None = None
    all_: list[Cond] | None = Field(default=None, alias="all", min_length=1)
    any_: list[Cond] | None = Field(default=None, alias="any", min_length=1)
    not_: Cond | None = Field(default=None, alias="not")
    held: HeldModel | None = None
    within: WithinModel | None = None
    flat: Literal[True] | None = None
    long: Literal[True] | None = None
    short: Literal[True] | None = None
    pending: Literal[True] | None = None
    expr: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CondModel:
        given = [k for k in self.model_fields_set]
        if len(given) != 1:
            raise _err(
                "condition",
                f"a condition has exactly one key, found {len(given)}",
                "one of " + ", ".join(_COND_KEYS),
            )
        return self


Cond = Annotated[
    Union[Annotated[str, Tag("<expr>")], Annotated[CondModel, Tag("<cond>")]],
    Discriminator(_cond_tag),
]


# ------------------------------------------------------------------- intents


class ExecFields(Strict):
    """Per-intent execution style (overrides the card's ``execution:`` section)."""

    style: Style | None = None
    offset: Operand | None = None  # limit price offset from the close (quote currency)
    timeout_bars: int = Field(default=0, ge=0, le=MAX_COUNT)
    slices: int = Field(default=0, ge=0, le=MAX_COUNT)
    slice_every_bars: int = Field(default=0, ge=0, le=MAX_COUNT)
    slice_every: Duration | None = None


class SizedFields(ExecFields):
    qty: float | None = Field(default=None, gt=0, le=MAX_QTY)  # base currency
    equity_pct: float | None = Field(default=None, gt=0, le=10_000)
    risk_pct: float | None = Field(default=None, gt=0, le=100)
    stop_distance: Operand | None = None

    @model_validator(mode="after")
    def _one_size(self) -> SizedFields:
        given = [k for k in ("qty", "equity_pct", "risk_pct") if getattr(self, k) is not None]
        if len(given) > 1:
            raise _err(
                "sizing",
                f"more than one sizing given ({', '.join(given)})",
                "at most one of qty, equity_pct, risk_pct",
            )
        if self.risk_pct is not None and self.stop_distance is None:
            raise _err(
                "sizing",
                "risk_pct needs stop_distance (the loss per unit if the stop is hit)",
                "stop_distance, e.g. '2 * atr'",
            )
        return self


class EntryModel(SizedFields):
    stop_loss: Operand | None = None  # absolute price, e.g. "close - 2 * atr"
    take_profit: Operand | None = None


class PlaceLimitModel(SizedFields):
    side: Literal["long", "short"]
    price: Operand
    stop_loss: Operand | None = None
    take_profit: Operand | None = None


class ReduceModel(ExecFields):
    pct: float = Field(gt=0, le=100)


class PriceModel(Strict):
    price: Operand


class TrailModel(Strict):
    distance: Operand


_ACTION_KEYS = [
    "enter_long",
    "enter_short",
    "add",
    "reduce",
    "exit",
    "place_limit",
    "set_stop",
    "set_take_profit",
    "trail_stop",
    "cancel_all",
]


class IntentModel(Strict):
    """Exactly one action key."""

    enter_long: EntryModel | None = None
    enter_short: EntryModel | None = None
    add: SizedFields | None = None
    reduce: ReduceModel | None = None
    exit: ExecFields | None = None
    place_limit: PlaceLimitModel | None = None
    set_stop: PriceModel | None = None
    set_take_profit: PriceModel | None = None
    trail_stop: TrailModel | None = None
    cancel_all: Strict | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        # "exit:" with nothing after it (YAML null) or "exit: true" mean "exit: {}".
        if isinstance(data, dict):
            return {k: ({} if v is None or v is True else v) for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> IntentModel:
        given = list(self.model_fields_set)
        if len(given) != 1:
            raise _err(
                "intent",
                f"an intent has exactly one action, found {len(given)}",
                "one of " + ", ".join(_ACTION_KEYS),
            )
        return self

    def action(self) -> tuple[str, Any]:
        key = next(iter(self.model_fields_set))
        return key, getattr(self, key)


def _intent_from_str(value: Any) -> Any:
    # "then: exit" / "then: cancel_all" as bare words.
    if isinstance(value, str):
        if value.strip() in ("exit", "cancel_all"):
            return {value.strip(): {}}
        raise _err("intent", "not an intent", "a mapping such as {enter_long: {equity_pct: 10}}")
    return value


IntentIn = Annotated[IntentModel, BeforeValidator(_intent_from_str)]


def _then_tag(value: Any) -> str:
    return "<list>" if isinstance(value, list) else "<one>"


Then = Annotated[
    Union[
        Annotated[IntentIn, Tag("<one>")],
        Annotated[list[IntentIn], Tag("<list>")],
    ],
    Discriminator(_then_tag),
]


class BlockModel(Strict):
    name: str | None = None
    when: Cond
    then: Then


# ------------------------------------------------------------------- sections


class TimeframesModel(Strict):
    execution: Timeframe = "1m"
    higher: list[Timeframe] = []


class FeatureModel(BaseModel):
    """``indicator`` plus its parameters inline (checked against the registry later)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    indicator: str
    timeframe: Timeframe | None = None

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RiskModel(Strict):
    # quote currency; 0 = no cap
    max_position_notional: float = Field(default=0.0, ge=0, le=MAX_MONEY)
    # A cap on exposure: position notional / equity, checked on entries and adds. Not the
    # margin the venue charges: that is sim.leverage.
    max_leverage: float = Field(default=10.0, gt=0, le=125)
    max_open_orders: int = Field(default=20, ge=1, le=10_000)
    daily_loss_limit_pct: float = Field(default=0.0, ge=0, le=100)
    allow_flip: bool = False
    default_equity_pct: float = Field(default=10.0, gt=0, le=10_000)


class ExecutionModel(Strict):
    style: Style = "market"
    limit_offset: float = Field(default=0.0, ge=0, le=MAX_MONEY)  # quote currency from the close
    limit_timeout_bars: int = Field(default=0, ge=0, le=MAX_COUNT)
    slices: int = Field(default=1, ge=1, le=MAX_COUNT)
    slice_every_bars: int = Field(default=1, ge=1, le=MAX_COUNT)
    slice_every: Duration | None = None
    checkpoint_every: int = Field(default=10_000, ge=1, le=MAX_COUNT)


class SimModel(Strict):
    maker_fee: Fee = 20_000
    taker_fee: Fee = 55_000
    slippage_ticks: int = Field(default=1, ge=0, le=MAX_TICKS)
    max_volume_pct: int = Field(default=0, ge=0, le=100)
    both_hit: Literal["worse", "better", "path"] = "worse"
    # Used at each settlement where --funding gives no rate (Bybit's usual 0.01 %).
    funding_rate: FundingRate = 10_000  # per interval
    funding_interval: FundingInterval | None = None  # None: the instrument's (8h built in)
    # The margin leverage the venue charges (IM = notional / leverage); the daemon sets
    # it on the venue at start. Not a cap on exposure: that is risk.max_leverage.
    leverage: int = Field(default=10, ge=1, le=125)
    # cross: liquidation against the wallet's equity (Bybit unified account default);
    # isolated: against the position's own IM. The daemon sets it on the venue at start.
    margin_mode: Literal["cross", "isolated"] = "cross"
    maintenance_margin: MarginRate = 500_000  # (0, 50 %)
    liquidation_fee: LiquidationFee = 55_000

    @field_validator("maintenance_margin")
    @classmethod
    def _position_can_exist(cls, value: int, info: ValidationInfo) -> int:
        # A position needs its initial margin rate (1/leverage) above the maintenance rate.
        leverage = info.data.get("leverage")
        if isinstance(leverage, int) and leverage * value >= 100_000_000:
            raise _err(
                "maintenance_margin",
                f"maintenance margin {_show_rate(value)} leaves no room for leverage "
                f"{leverage} (1/leverage must be above it)",
                f"a maintenance margin below {_show_rate(-(-100_000_000 // leverage))}",
            )
        return value


def _decimal_text(value: Any) -> str:
    """A non-negative decimal kept as text (YAML's 0.01 float prints back as "0.01")."""
    if isinstance(value, bool):
        raise _err("decimal", "not a number", "a non-negative decimal such as 0.01")
    text = str(value).strip()
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise _err("decimal", "not a number", "a non-negative decimal such as 0.01") from None
    if not d.is_finite() or d < 0:
        raise _err("decimal", "not a non-negative number", "a non-negative decimal such as 0.01")
    return f"{d:f}"


DecimalText = Annotated[str, BeforeValidator(_decimal_text)]


class InstrumentModel(Strict):
    """The instrument's filters for data that is not a Bybit perpetual (a stock, a test file)."""

    tick_size: DecimalText
    qty_step: DecimalText
    min_qty: DecimalText
    min_notional: DecimalText = "0"
    max_qty: DecimalText = "0"
    quote: str = Field(default="USDT", pattern=r"^[A-Za-z0-9]{1,20}$")
    base: str = Field(default="", pattern=r"^[A-Za-z0-9]{0,20}$")
    perpetual: bool = True  # false: never pays or receives funding (a stock, a spot market)
    funding_interval: FundingInterval = 8 * 3_600_000  # a perpetual's settlement interval


class StrategyModel(Strict):
    class_: str = Field(alias="class", min_length=1)
    params: dict[str, Any] = {}


class CardModel(Strict):
    name: str | None = None
    description: str | None = None
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,30}$")
    timeframes: TimeframesModel = TimeframesModel()
    features: dict[str, FeatureModel] = {}
    blocks: list[BlockModel] = []
    risk: RiskModel = RiskModel()
    execution: ExecutionModel = ExecutionModel()
    sim: SimModel = SimModel()
    strategy: StrategyModel | None = None
    instrument: InstrumentModel | None = None  # else the built-in table (replay.instruments)
    params: dict[str, Any] = {}  # checked and substituted by replay.cards.params first

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_are_defaults(cls, data: Any) -> Any:
        # "risk:" with nothing under it is YAML null: read it as "all defaults".
        if isinstance(data, dict):
            optional = ("timeframes", "features", "risk", "execution", "sim")
            return {k: v for k, v in data.items() if not (v is None and k in optional)}
        return data

    @field_validator("features")
    @classmethod
    def _feature_names(cls, value: dict[str, FeatureModel]) -> dict[str, FeatureModel]:
        for name in value:
            if not _IDENT_RE.match(name):
                raise _err(
                    "feature_name",
                    f"feature name {name!r} is not an identifier",
                    "letters, digits and _ (no dots or spaces), e.g. fast_ma",
                )
        return value

    @model_validator(mode="after")
    def _needs_blocks(self) -> CardModel:
        if not self.blocks and self.strategy is None:
            raise PydanticCustomError(
                "missing_blocks",
                "a card needs blocks (or a Python strategy)",
                {"expected": "blocks: a list of {when: ..., then: ...}", "suggestion": ""},
            )
        return self


HeldModel.model_rebuild()
WithinModel.model_rebuild()
CondModel.model_rebuild()
BlockModel.model_rebuild()
CardModel.model_rebuild()
