"""A TCP proxy in front of PostgreSQL that can cut a connection right after the server has committed a new work
order, before the client hears of it: the one failure after which a client cannot know whether its write is
stored, so only a retry with the same idempotency key can avoid a second order.

    proxy = CommitCutProxy(upstream_port=pg.port)
    await proxy.start()                 # point DATABASE_URL at 127.0.0.1:<proxy.port>
    proxy.cut_next_order()              # the next transaction inserting a work order commits; its answer is lost
    proxy.cut_next_order(then_refuse=True)  # … and the database stays unreachable after it
    proxy.refuse(True)                  # new and open connections fail at once, as while the server is down
    await proxy.close()

It follows the wire protocol just enough for that: which prepared statements (or simple queries) insert into
work_orders, and, once one has run, the server's answers up to each ReadyForQuery, whose transaction status says
whether the write is now committed (idle after a COMMIT, or after an autocommitted statement).
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

INSERT_ORDER = b"INSERT INTO work_orders ("
SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


@dataclass
class _Connection:
    order_statements: set[bytes] = field(default_factory=set)  # names of prepared statements inserting an order
    wrote_order: bool = False  # an order was inserted (while armed) and not yet committed or rolled back


class CommitCutProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0  # set by start()
        self.commits_cut = 0
        self._armed = False
        self._refuse_after_cut = False
        self._refusing = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def cut_next_order(self, then_refuse: bool = False) -> None:
        self._armed = True
        self._refuse_after_cut = then_refuse

    def refuse(self, on: bool) -> None:
        self._refusing = on
        if on:
            self._drop_all()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._drop_all()
        if self._server is not None:
            await self._server.wait_closed()

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._refusing:
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.transport.abort()
            return
        pair, conn = {client_w, server_w}, _Connection()
        self._writers |= pair
        tasks = [asyncio.create_task(self._client_to_server(client_r, server_w, conn)),
                 asyncio.create_task(self._server_to_client(server_r, client_w, conn))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for writer in pair:
                writer.transport.abort()
            self._writers -= pair
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                conn: _Connection) -> None:
        while True:  # start-up packets have no type byte: [SSLRequest|GSSENCRequest] StartupMessage
            head = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack("!I", head)[0] - 4)
            writer.write(head + body)
            if struct.unpack("!I", body[:4])[0] not in (SSL_REQUEST, GSSENC_REQUEST):
                break
        while True:
            kind, body = await _read_message(reader)
            if kind == b"P":  # Parse: statement name, query
                name, query = body.split(b"\0", 2)[:2]
                if INSERT_ORDER in query:
                    conn.order_statements.add(name)
            elif self._armed and kind == b"B":  # Bind: portal name, statement name
                conn.wrote_order |= body.split(b"\0", 2)[1] in conn.order_statements
            elif self._armed and kind == b"Q":
                conn.wrote_order |= INSERT_ORDER in body
            writer.write(kind + struct.pack("!I", len(body) + 4) + body)
            await writer.drain()

    async def _server_to_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                conn: _Connection) -> None:
        first = await reader.readexactly(1)
        if first in (b"N", b"S", b"G"):  # the one-byte answer to SSLRequest/GSSENCRequest (no TLS here)
            writer.write(first)
        else:
            reader = _Prepend(first, reader)  # type: ignore[assignment]
        held: list[bytes] = []
        while True:
            kind, body = await _read_message(reader)
            raw = kind + struct.pack("!I", len(body) + 4) + body
            if not conn.wrote_order:
                writer.write(raw)
                await writer.drain()
                continue
            held.append(raw)
            if kind == b"E" or (kind == b"C" and body.startswith(b"ROLLBACK")):
                conn.wrote_order = False  # the insert failed or was undone: nothing to cut
            elif kind == b"Z" and body[:1] == b"I":  # idle again: the order is committed
                conn.wrote_order = False
                if self._armed:
                    self._armed = False
                    self.commits_cut += 1
                    if self._refuse_after_cut:
                        self.refuse(True)
                    return  # the client never hears of it: its connection just dies
            if kind == b"Z" or not conn.wrote_order:
                writer.write(b"".join(held))
                held.clear()
                await writer.drain()


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    kind = await reader.readexactly(1)
    length = struct.unpack("!I", await reader.readexactly(4))[0]
    return kind, await reader.readexactly(length - 4)


class _Prepend:
    """A reader that first gives back a byte already read."""

    def __init__(self, first: bytes, reader: asyncio.StreamReader) -> None:
        self._first, self._reader = first, reader

    async def readexactly(self, n: int) -> bytes:
        if self._first:
            head, self._first = self._first, b""
            return head + (await self._reader.readexactly(n - 1) if n > 1 else b"")
        return await self._reader.readexactly(n)
