"""A session as pandas DataFrames, for notebooks: ``replay.open(store, session)``.

    import replay
    s = replay.open("runs", "ma_cross-20260101-120000")
    s.summary["sharpe"], s.trades.head(), s.equity.plot(x="time", y="equity")

Everything is folded from the log (any mode, finished or not), by the same code as the
report: ``candles`` (execution timeframe, prices and volume in human units), ``equity``
(one row per candle close), ``trades`` (trades.csv's rows and columns), ``events`` (every
event as ``replay inspect --json`` shows it, read again from the log when asked) and
``summary`` (summary.json). Needs pandas: ``pip install -e '.[notebook]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.events import to_dict
from engine.instrument import MONEY_SCALE, Instrument
from eventstore import EventStore
from replay.errors import InputError
from replay.report import summary_dict
from replay.report_trades import COLUMNS, csv_values, trade_rows
from replay.session_ids import check_session_id
from replay.verify import read_session


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise InputError(
            "replay.open needs pandas: pip install -e '.[notebook]' (or pip install pandas)"
        ) from None
    return pandas


class SessionFrames:
    """One session's log, folded once; each property builds its DataFrame on demand."""

    def __init__(self, store: str | Path, session: str) -> None:
        from replay.backtest import summary_from_log

        self._pd = _pandas()
        self.store = Path(store)
        self.session = check_session_id(session, "session")
        if not (self.store / "data.mdb").exists():
            raise InputError(f"{self.store}: no replay store here (no data.mdb)")
        with EventStore(self.store, readonly=True) as es:
            if self.session not in es:
                raise InputError(f"{self.session}: no such session in {self.store}")
            started, view, summary, info, _ = summary_from_log(es, self.session)
        self.started = started
        self.view = view
        self.instrument = Instrument(started.instrument)
        self.summary: dict[str, Any] = summary_dict(summary, info)

    def _times(self, ms: np.ndarray) -> Any:
        return self._pd.to_datetime(ms, unit="ms", utc=True)

    @property
    def candles(self) -> Any:
        v, tick = self.view, float(self.instrument.tick)
        return self._pd.DataFrame(
            {
                "time": self._times(v.curve_ts.array()),
                "open": v.curve_open.array() * tick,
                "high": v.curve_high.array() * tick,
                "low": v.curve_low.array() * tick,
                "close": v.curve_close.array() * tick,
                "volume": v.curve_volume.array() * float(self.instrument.step),
            }
        )

    @property
    def equity(self) -> Any:
        v = self.view
        return self._pd.DataFrame(
            {
                "time": self._times(v.curve_ts.array()),
                "equity": v.curve_equity.array() / MONEY_SCALE,
                "close": v.curve_close.array() * float(self.instrument.tick),
                "position": v.curve_qty.array() * float(self.instrument.step),
            }
        )

    @property
    def trades(self) -> Any:
        rows = [csv_values(r, self.instrument) for r in trade_rows(self.view)]
        frame = self._pd.DataFrame(rows, columns=list(COLUMNS))
        for col in ("entry_time", "exit_time"):
            frame[col] = self._pd.to_datetime(frame[col], utc=True)
        numeric = [c for c in COLUMNS if c not in ("side", "entry_time", "exit_time")]
        numeric = [c for c in numeric if c not in ("opened_by", "close_reason")]
        frame[numeric] = frame[numeric].apply(self._pd.to_numeric)
        return frame

    @property
    def events(self) -> Any:
        with EventStore(self.store, readonly=True) as es:
            rows = [{"seq": seq, **to_dict(e)} for seq, e in read_session(es, self.session)]
        return self._pd.DataFrame(rows)


def open(store: str | Path, session: str) -> SessionFrames:
    """The session ``session`` of the store at ``store``, as DataFrames."""
    return SessionFrames(store, session)
