"""``python -m tools.bybit_emulator --candles FILE [--speed X] [--port N] ...``

Serves until SIGINT/SIGTERM. The first line on stdout is one JSON object with the URLs
(``{"rest": ..., "ws_public": ..., "ws_private": ...}``) so scripts can find an ephemeral port.
``--speed`` is in candles per second (0: only ``POST /_emulator/step`` advances time).
The accepted key pair defaults to ``emulator-key`` / ``emulator-secret``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from engine.events import InstrumentSpec
from engine.instrument import BTCUSDT, Instrument, money_from_str

from .candles import CandleFileError, load_candle_file
from .server import DEFAULT_API_KEY, DEFAULT_API_SECRET, Emulator, EmulatorConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m tools.bybit_emulator", description=__doc__)
    ap.add_argument("--candles", required=True, type=Path, help="CSV timestamp,o,h,l,c,volume")
    ap.add_argument("--speed", type=float, default=1.0, help="candles per second; 0 = stepped")
    ap.add_argument("--port", type=int, default=0, help="0 or absent: an ephemeral port")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--api-key", default=DEFAULT_API_KEY)
    ap.add_argument("--api-secret", default=DEFAULT_API_SECRET)
    ap.add_argument("--balance", default="10000", help="first USDT wallet balance")
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--tick-size", default="", help="for a symbol other than BTCUSDT")
    ap.add_argument("--qty-step", default="", help="for a symbol other than BTCUSDT")
    ap.add_argument("--history", type=int, default=0, help="candles played silently at start")
    ap.add_argument(
        "--gaps",
        choices=("fail", "fill", "skip"),
        default="fail",
        help="missing bars in the file: refuse it (default), fill or skip them",
    )
    return ap.parse_args(argv)


def spec_for(symbol: str, tick: str, step: str) -> InstrumentSpec:
    """BTCUSDT's real filters, or a generic USDT perpetual spec for another symbol."""
    if symbol == BTCUSDT.symbol and not (tick or step):
        return BTCUSDT
    base = symbol[:-4] if symbol.endswith("USDT") else symbol
    return InstrumentSpec(
        symbol=symbol,
        tick_size=tick or "0.01",
        qty_step=step or "0.001",
        min_qty=step or "0.001",
        min_notional="5",
        max_qty="1000000",
        base_coin=base,
    )


async def serve(args: argparse.Namespace) -> int:
    spec = spec_for(args.symbol, args.tick_size, args.qty_step)
    try:
        balance = money_from_str(Decimal(args.balance))
        candles = load_candle_file(args.candles, Instrument(spec), gaps=args.gaps)
    except (CandleFileError, OSError, InvalidOperation, ValueError) as exc:
        print(f"bybit_emulator: {exc}", file=sys.stderr)
        return 2
    config = EmulatorConfig(
        spec=spec,
        api_key=args.api_key,
        api_secret=args.api_secret,
        balance=balance,
        speed=args.speed,
        host=args.host,
        port=args.port,
        history=args.history,
    )
    emu = Emulator(config, candles)
    urls = await emu.start()
    sys.stdout.write(json.dumps(urls) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await emu.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
