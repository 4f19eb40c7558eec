"""A TCP proxy in front of PostgreSQL that can cut a connection right after the server has committed, before the
client hears it: the one failure after which a client cannot know whether its write is stored, so only a retry
with the same idempotency key can avoid a duplicate.

    proxy = CommitCutProxy(upstream_port=pg.port)
    port = await proxy.start()          # point DATABASE_URL at 127.0.0.1:<port>
    proxy.cut_next_commit()             # the next COMMIT on any connection is done, its answer never arrives
    proxy.refuse(True)                  # new and open connections fail at once, as while the server is down
    await proxy.close()
"""

from __future__ import annotations

import asyncio
import struct

COMMIT_DONE = b"COMMIT\x00"  # CommandComplete tag of a committed transaction


class CommitCutProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.commits_cut = 0
        self._cut_armed = False
        self._refusing = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    def cut_next_commit(self) -> None:
        self._cut_armed = True

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
        pair = {client_w, server_w}
        self._writers |= pair
        tasks = [asyncio.create_task(self._pipe(client_r, server_w)),
                 asyncio.create_task(self._server_to_client(server_r, client_w))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for writer in pair:
                writer.transport.abort()
            self._writers -= pair
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    async def _server_to_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward message by message (type byte, int32 length, payload) to see each CommandComplete."""
        first = await reader.readexactly(1)
        if first == b"N":  # the one-byte answer to the client's SSLRequest: no TLS here
            writer.write(first)
            first = await reader.readexactly(1)
        while True:
            head = first + await reader.readexactly(4)
            (length,) = struct.unpack("!I", head[1:])
            body = await reader.readexactly(length - 4)
            if head[:1] == b"C" and body == COMMIT_DONE and self._cut_armed:
                self._cut_armed = False
                self.commits_cut += 1
                return  # committed on the server; the client only sees its connection die
            writer.write(head + body)
            await writer.drain()
            first = await reader.readexactly(1)
