"""Validated pydantic models -> the engine's plain data (CardSpec, EngineConfig, SimConfig).

Each spec node keeps the field path it came from, so compile errors can name it.
Money amounts in quote currency convert exactly (half-even at 1e-8).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapters.sim.config import SimConfig
from engine.card import (
    AllOf,
    AnyOf,
    BlockSpec,
    CardSpec,
    Compare,
    Condition,
    Cross,
    Expr,
    FeatureSpec,
    Held,
    IntentSpec,
    Not,
    PositionIs,
    Within,
)
from engine.config import EngineConfig, ExecutionDefaults, RiskLimits
from engine.instrument import money_from_str
from replay.cards.schema import (
    CardModel,
    CondModel,
    ExecFields,
    ExecutionModel,
    IntentModel,
    SizedFields,
)


def _money(value: float) -> int:
    return money_from_str(Decimal(repr(float(value))), "ROUND_HALF_EVEN")


def to_condition(c: str | CondModel, path: str) -> Condition:
    """One condition model (or expression string) -> an engine.card condition."""
    if isinstance(c, str):
        word = c.strip()
        if word in ("flat", "long", "short", "pending"):
            return PositionIs(word, path)
        return Expr(c, path)
    key = next(iter(c.model_fields_set))
    sub = f"{path}.{key}"
    if key in ("gt", "lt", "ge", "le", "eq", "ne"):
        left, right = getattr(c, key)
        return Compare(key, left, right, sub)
    if key in ("cross_above", "cross_below"):
        a, b = getattr(c, key)
        return Cross(key == "cross_above", a, b, sub)
    if key in ("all", "all_"):
        return AllOf([to_condition(x, f"{sub}[{i}]") for i, x in enumerate(c.all_ or [])], sub)
    if key in ("any", "any_"):
        return AnyOf([to_condition(x, f"{sub}[{i}]") for i, x in enumerate(c.any_ or [])], sub)
    if key in ("not", "not_"):
        assert c.not_ is not None
        return Not(to_condition(c.not_, sub), sub)
    if key == "held":
        assert c.held is not None
        return Held(c.held.for_, to_condition(c.held.cond, f"{sub}.cond"), sub)
    if key == "within":
        w = c.within
        assert w is not None
        return Within(
            w.bars, to_condition(w.first, f"{sub}.first"), to_condition(w.then, f"{sub}.then"), sub
        )
    if key == "expr":
        return Expr(c.expr or "", sub)
    return PositionIs(key, sub)


def _exec_kwargs(e: ExecFields) -> dict[str, Any]:
    return {
        "style": e.style or "",
        "offset": e.offset,
        "timeout_bars": e.timeout_bars,
        "slices": e.slices,
        "slice_every_bars": e.slice_every_bars,
        "slice_every_ms": e.slice_every or 0,
    }


def _sized_kwargs(s: SizedFields) -> dict[str, Any]:
    return {
        "qty": s.qty,
        "equity_pct": s.equity_pct or 0.0,
        "risk_pct": s.risk_pct or 0.0,
        "stop_distance": s.stop_distance,
    }


def to_intent(m: IntentModel, path: str) -> IntentSpec:
    """One intent model -> IntentSpec (path ends at the action key)."""
    action, body = m.action()
    p = f"{path}.{action}"
    kw: dict[str, Any] = {}
    if isinstance(body, ExecFields):
        kw.update(_exec_kwargs(body))
    if isinstance(body, SizedFields):
        kw.update(_sized_kwargs(body))
    if action in ("enter_long", "enter_short"):
        kw["stop_loss"] = body.stop_loss
        kw["take_profit"] = body.take_profit
    elif action == "place_limit":
        kw["side"] = body.side
        kw["price"] = body.price
        kw["stop_loss"] = body.stop_loss
        kw["take_profit"] = body.take_profit
    elif action == "reduce":
        kw["reduce_pct"] = body.pct
    elif action in ("set_stop", "set_take_profit"):
        kw["price"] = body.price
    elif action == "trail_stop":
        kw["trail_distance"] = body.distance
    return IntentSpec(action, p, **kw)


def _execution(e: ExecutionModel, tick: Decimal) -> ExecutionDefaults:
    return ExecutionDefaults(
        style=e.style,
        limit_offset_ticks=float(Decimal(repr(e.limit_offset)) / tick),
        limit_timeout_bars=e.limit_timeout_bars,
        slices=e.slices,
        slice_every_bars=e.slice_every_bars,
        slice_every_ms=e.slice_every or 0,
    )


def to_engine_config(card: CardModel, tick: Decimal) -> EngineConfig:
    """The ``risk:`` and ``execution:`` sections (limit_offset converted with ``tick``)."""
    r = card.risk
    return EngineConfig(
        risk=RiskLimits(
            max_position_notional=_money(r.max_position_notional),
            max_leverage=r.max_leverage,
            max_open_orders=r.max_open_orders,
            daily_loss_limit_pct=r.daily_loss_limit_pct,
            allow_flip=r.allow_flip,
        ),
        execution=_execution(card.execution, tick),
        checkpoint_every=card.execution.checkpoint_every,
        default_equity_pct=r.default_equity_pct,
    )


def to_sim_config(card: CardModel) -> SimConfig:
    s = card.sim
    return SimConfig(
        maker_fee_e8=s.maker_fee,
        taker_fee_e8=s.taker_fee,
        slippage_ticks=s.slippage_ticks,
        max_volume_pct=s.max_volume_pct,
        both_hit=s.both_hit,
        funding_rate_e8=s.funding_rate,
        funding_interval_ms=s.funding_interval,
        leverage=s.leverage,
        margin_mode=s.margin_mode,
        maintenance_margin_e8=s.maintenance_margin,
        liquidation_fee_e8=s.liquidation_fee,
    )


def to_spec(card: CardModel, engine: EngineConfig) -> CardSpec:
    """The engine's CardSpec (paths follow how each block wrote ``then``: one or a list)."""
    exec_tf = card.timeframes.execution
    features = tuple(
        FeatureSpec(name, f.indicator, f.params(), f.timeframe or exec_tf, f"features.{name}")
        for name, f in card.features.items()
    )
    blocks = []
    for i, b in enumerate(card.blocks):
        bp = f"blocks[{i}]"
        as_list = isinstance(b.then, list)
        items = b.then if isinstance(b.then, list) else [b.then]
        then = [
            to_intent(it, f"{bp}.then[{j}]" if as_list else f"{bp}.then")
            for j, it in enumerate(items)
        ]
        blocks.append(
            BlockSpec(b.name or f"block{i}", to_condition(b.when, f"{bp}.when"), then, bp)
        )
    return CardSpec(
        name=card.name or "",
        symbol=card.symbol,
        timeframe=exec_tf,
        higher=tuple(card.timeframes.higher),
        features=features,
        blocks=tuple(blocks),
        engine=engine,
        strategy_class=card.strategy.class_ if card.strategy else "",
        strategy_params=dict(card.strategy.params) if card.strategy else {},
    )
