"""Historical candles in: CSV, Bybit kline JSON, Parquet, and the built-in generator.

``load_candles(path, instrument)`` reads and checks a file; ``generate(seed)`` makes
the built-in synthetic market; both return a ``CandleSeries`` whose ``events()``
streams ``CandleClosed`` events stamped at each bar's close.
"""

from engine.timeframes import timeframe_label, timeframe_ms

from .csv import write_csv
from .errors import DataError, FetchError
from .loader import build_series, detect_format, load_candles
from .parquet import write_parquet
from .series import CandleSeries
from .synthetic import generate, is_synthetic

__all__ = [
    "CandleSeries",
    "DataError",
    "FetchError",
    "build_series",
    "detect_format",
    "generate",
    "is_synthetic",
    "load_candles",
    "timeframe_label",
    "timeframe_ms",
    "write_csv",
    "write_parquet",
]
