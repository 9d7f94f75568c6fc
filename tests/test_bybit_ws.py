"""WsStream against a small scripted WebSocket server on 127.0.0.1 (real sockets).

The emulator cannot send garbage on purpose, so this server does: it answers auth and
subscribe like Bybit, then sends whatever frames a test scripts, and records what the
client sent (auth, subscribes, pings).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from adapters.bybit.clock import ExchangeClock
from adapters.bybit.keys import ApiKeys, Secret
from adapters.bybit.retry import Backoff
from adapters.bybit.ws import WsStream

KEY, SECRET = "ws-key", "ws-secret-never-print"


class ScriptedServer:
    """Per connection: handle auth/subscribe/ping, send ``script[n]`` frames, maybe close."""

    def __init__(self, scripts: list[list[str]], close_after: set[int]) -> None:
        self.scripts, self.close_after = scripts, close_after
        self.connections = 0
        self.subscribes: list[list[str]] = []
        self.auths: list[bool] = []
        self.pings = 0

    async def handler(self, ws: ServerConnection) -> None:
        n = self.connections
        self.connections += 1
        async for raw in ws:
            msg = json.loads(raw)
            op = msg.get("op")
            if op == "auth":
                key, expires, sig = msg["args"]
                want = hmac.new(SECRET.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256)
                ok = key == KEY and sig == want.hexdigest()
                self.auths.append(ok)
                await ws.send(
                    json.dumps({"op": "auth", "success": ok, "ret_msg": "", "conn_id": "c"})
                )
            elif op == "ping":
                self.pings += 1
                await ws.send(
                    json.dumps({"op": "pong", "req_id": msg.get("req_id"), "args": ["1"]})
                )
            elif op == "subscribe":
                self.subscribes.append(msg["args"])
                ack = {"op": "subscribe", "success": True, "ret_msg": "", "req_id": msg["req_id"]}
                await ws.send(json.dumps(ack))
                for frame in self.scripts[min(n, len(self.scripts) - 1)]:
                    await ws.send(frame)
                if n in self.close_after:
                    await ws.close()
                    return


def data(topic: str, n: int) -> str:
    return json.dumps({"topic": topic, "creationTime": n, "data": [{"n": n}]})


def run_stream(
    server: ScriptedServer, until: Any, pong_counter: list[int] | None = None, **kw: Any
) -> tuple[WsStream, list, list]:
    got: list[dict[str, Any]] = []
    connected: list[int] = []

    async def main() -> WsStream:
        async with serve(server.handler, "127.0.0.1", 0) as srv:
            port = srv.sockets[0].getsockname()[1]

            async def hook(n: int) -> None:
                connected.append(n)

            stream = WsStream(
                "private",
                f"ws://127.0.0.1:{port}/v5/private",
                ["order", "execution"],
                got.append,
                keys=ApiKeys(KEY, Secret(SECRET), "test"),
                clock=ExchangeClock(),
                on_connected=hook,
                backoff=Backoff(0.02, 0.1, seed=1),
                use_proxy=False,
                **kw,
            )
            stream.start()
            try:
                async with asyncio.timeout(20):
                    while not until(got, connected):
                        if pong_counter is not None:
                            pong_counter[0] = stream.pongs
                        await asyncio.sleep(0.01)
            finally:
                await stream.stop()
            return stream

    return asyncio.run(main()), got, connected


def test_garbage_frames_are_skipped_and_the_stream_goes_on(caplog: Any) -> None:
    frames = [
        "not json {",
        '["a", "list"]',
        data("order", 1),
        '{"no_topic": true}',
        b"\xff\xfe binary junk".decode("latin-1"),
        data("execution", 2),
    ]
    server = ScriptedServer([frames], set())
    with caplog.at_level(logging.WARNING, logger="adapters.bybit.ws"):
        stream, got, _ = run_stream(server, lambda got, c: len(got) >= 2)
    assert [m["creationTime"] for m in got] == [1, 2]
    assert stream.malformed == 3
    assert "not JSON" in caplog.text
    assert server.auths == [True]


def test_reconnect_reauths_resubscribes_and_fires_the_hook() -> None:
    server = ScriptedServer(
        [[data("order", 1)], [data("order", 2)], [data("order", 3)]], close_after={0, 1}
    )
    stream, got, connected = run_stream(server, lambda got, c: len(got) >= 3 and len(c) >= 3)
    assert [m["creationTime"] for m in got] == [1, 2, 3]
    assert connected == [0, 1, 2]  # 0 = first connection, then one call per reconnect
    assert server.subscribes == [["order", "execution"]] * 3
    assert server.auths == [True, True, True]
    assert stream.connections == 3


def test_application_pings_are_sent_and_pongs_counted() -> None:
    server = ScriptedServer([[]], set())
    pongs = [0]

    def counted(got: list, connected: list) -> bool:
        return server.pings >= 3 and pongs[0] >= 3

    stream, _, _ = run_stream(server, counted, ping_interval_s=0.05, pong_counter=pongs)
    assert server.pings >= 3 and stream.pongs >= 3


def test_handler_errors_do_not_kill_the_stream() -> None:
    server = ScriptedServer([[data("order", 1), data("order", 2)]], set())
    seen: list[int] = []

    def bad_then_good(msg: dict[str, Any]) -> None:
        seen.append(msg["creationTime"])
        if msg["creationTime"] == 1:
            raise RuntimeError("a bug in a consumer")

    async def main() -> None:
        async with serve(server.handler, "127.0.0.1", 0) as srv:
            port = srv.sockets[0].getsockname()[1]
            stream = WsStream(
                "public",
                f"ws://127.0.0.1:{port}/v5/public/linear",
                ["kline.1.BTCUSDT"],
                bad_then_good,
                use_proxy=False,
            )
            stream.start()
            async with asyncio.timeout(20):
                while len(seen) < 2:
                    await asyncio.sleep(0.01)
            await stream.stop()

    asyncio.run(main())
    assert seen == [1, 2]
    assert server.auths == []  # public streams do not authenticate


def test_a_connection_that_worked_reconnects_at_the_base_delay_however_often_it_is_cut() -> None:
    """Six cuts of a healthy, subscribed stream: each reconnect waits the base delay, not an
    ever-doubling one (which had grown to 14 s in a soak and starved the daemon)."""
    server = ScriptedServer([[data("order", n)] for n in range(7)], close_after=set(range(6)))
    connected_at: list[float] = []

    async def main() -> None:
        async with serve(server.handler, "127.0.0.1", 0) as srv:
            port = srv.sockets[0].getsockname()[1]

            async def hook(n: int) -> None:
                connected_at.append(asyncio.get_running_loop().time())

            stream = WsStream(
                "private",
                f"ws://127.0.0.1:{port}/v5/private",
                ["order"],
                lambda msg: None,
                keys=ApiKeys(KEY, Secret(SECRET), "test"),
                clock=ExchangeClock(),
                on_connected=hook,
                backoff=Backoff(0.2, 30.0, seed=1),
                use_proxy=False,
            )
            stream.start()
            try:
                async with asyncio.timeout(30):
                    while len(connected_at) < 7:
                        await asyncio.sleep(0.01)
            finally:
                await stream.stop()

    asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(connected_at)]
    # Doubling would wait 0.2 + 0.4 + ... + 6.4 = 12.6 s; the base delay ~1.2 s in all.
    assert len(gaps) == 6 and max(gaps) < 1.0, gaps
