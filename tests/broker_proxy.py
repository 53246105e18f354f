"""Fault injection between Kafka clients and a real broker: a TCP proxy that can stall, cut and heal.

`BrokerProxy` forwards bytes between 127.0.0.1:`port` and an upstream broker, on an asyncio loop in
a daemon thread, so a (synchronous) test drives it with plain calls:
- `stall()`: keep every connection open but hold the bytes in both directions (a hung broker or a
  congested network: requests time out, nothing is refused);
- `cut()`: close every connection and stop listening, so new connections are refused (a broker
  that went away);
- `fail_produce(client_id, topic)`: close any connection as soon as a Produce request arrives on it
  from a client whose id starts with `client_id` to a topic whose name contains `topic` (both "":
  every write), and let every other request through:
  writes (outputs, changelogs, DLQ) fail while fetches, offset commits and group membership keep
  working (a broker whose log cannot take writes). This is the fault that exposes an acknowledgement
  of a record that was neither applied nor parked: the consumer keeps reading and committing while
  every write fails;
- `heal()`: listen again on the same port, let bytes flow and Produce requests through.

Client-to-broker bytes are forwarded one Kafka request at a time (4-byte size, then the request,
whose first two bytes are its api key), so a request is either forwarded whole or not at all.

Kafka clients connect to the bootstrap address only once: afterwards they use the addresses the
broker advertises in its metadata. A proxy in front of the session broker (tests/conftest.py,
whose Tansu advertises its own port) would therefore be bypassed after the first metadata answer.
`proxied_tansu` starts a dedicated Tansu whose advertised listener *is* the proxy's port, so every
connection of every client (consumer, producer, group coordinator) goes through the proxy (it is
`shopstream.dev.broker.start_tansu` with `advertised_port`).
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from shopstream.dev.broker import start_tansu
from shopstream.dev.ports import free_port

T = TypeVar("T")
_CHUNK = 64 * 1024
_SIZE = struct.Struct(">i")
PRODUCE_API_KEY = 0


class BrokerProxy:
    """A TCP proxy on 127.0.0.1:`port` towards `upstream` ("host:port"); see the module docstring."""

    def __init__(self, upstream: str, port: int | None = None) -> None:
        host, _, up_port = upstream.rpartition(":")
        self.upstream = (host, int(up_port))
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="broker-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        # (client id prefix, topic name bytes) of the Produce requests to refuse; None: refuse none.
        self._refuse_produce: tuple[str, bytes] | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> BrokerProxy:
        self._thread.start()
        self._call(self._start())
        return self

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, up_w}
        for task in (asyncio.create_task(self._pump_requests(client_r, up_w, client_w)),
                     asyncio.create_task(self._pump(up_r, client_w))):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while data := await reader.read(_CHUNK):
                await self._flowing.wait()  # stalled: hold the bytes (the connection stays open)
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            # One side ended: end the other too, as a real broker connection would.
            writer.close()
            self._writers.discard(writer)

    async def _pump_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             client: asyncio.StreamWriter) -> None:
        """Client to broker, framed per request so that Produce requests can be refused."""
        assert self._flowing is not None
        try:
            while True:
                head = await reader.readexactly(_SIZE.size)
                body = await reader.readexactly(_SIZE.unpack(head)[0])
                if self._refuse_produce is not None and body[:2] == PRODUCE_API_KEY.to_bytes(2, "big") \
                        and _client_id(body).startswith(self._refuse_produce[0]) and self._refuse_produce[1] in body:
                    client.close()  # the request is dropped with its connection: the client sees a broken link
                    break
                await self._flowing.wait()
                writer.write(head + body)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)

    def fail_produce(self, client_id: str = "", topic: str = "") -> None:
        """From now on, drop the connection of every Produce request from clients whose id starts with
        `client_id` and that writes to a topic whose name contains `topic` (until `heal`): e.g. client
        "shopstream-orders" fails the orders worker's writes but not the test's producer; topic
        "-changelog" fails only state-store changelog writes. (The topic is matched as bytes anywhere
        in the request: fine for tests.)"""
        self._loop.call_soon_threadsafe(setattr, self, "_refuse_produce", (client_id, topic.encode()))

    def stall(self) -> None:
        """Hold every byte from now on, in both directions, on open and new connections."""
        assert self._flowing is not None
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def cut(self) -> None:
        """Close every connection and refuse new ones until `heal`."""
        self._call(self._cut())

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def heal(self) -> None:
        """Listen again (after `cut`) and let bytes flow (after `stall`)."""
        self._call(self._heal())

    async def _heal(self) -> None:
        await self._listen()
        assert self._flowing is not None
        self._refuse_produce = None
        self._flowing.set()

    def close(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def _client_id(request: bytes) -> str:
    """The client id of a request (header v1+: api key, version, correlation id, then an int16-sized string)."""
    size = int.from_bytes(request[8:10], "big", signed=True)
    return request[10:10 + size].decode(errors="replace") if size > 0 else ""


@contextmanager
def proxied_tansu(log_path: Path, timeout_s: float = 20.0) -> Iterator[BrokerProxy]:
    """A dedicated in-memory Tansu reachable only through a `BrokerProxy` (its advertised listener)."""
    broker_port = free_port()
    proxy = BrokerProxy(f"127.0.0.1:{broker_port}").start()
    try:
        broker = start_tansu(broker_port, log_path, timeout_s, advertised_port=proxy.port)
    except Exception:
        proxy.close()
        raise
    try:
        yield proxy
    finally:
        proxy.close()
        broker.stop()
