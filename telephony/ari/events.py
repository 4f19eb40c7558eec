"""ARI events websocket: one connection per Stasis application, reconnecting with exponential backoff.

    events = AriEvents("http://127.0.0.1:8088", ("hotline", "secret"), app="hotline")
    events.on("StasisStart", handler)          # or events.on(StasisStart, handler); "*" = every event
    q = events.subscribe()                      # asyncio.Queue[Event], in arrival order
    await events.start(); await events.wait_connected(5)
    ...
    await events.stop()

Handlers may be plain functions or coroutine functions; coroutines run as tasks, so a slow handler never
stalls the socket (use `subscribe()` when strict ordering per call matters). `on_connect` callbacks run
after every (re)connect with the connection count, so a controller can rebuild its view from REST.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.tasks import cancel_and_wait

from .models import Event, parse_event

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None] | None]
ConnectCallback = Callable[[int], Awaitable[None] | None]


class AriEvents:
    def __init__(
        self,
        base_url: str,
        auth: tuple[str, str],
        app: str,
        *,
        subscribe_all: bool = False,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
    ) -> None:
        ws_base = base_url.replace("https://", "wss://").replace("http://", "ws://").rstrip("/")
        query = urlencode({"app": app, "subscribeAll": str(subscribe_all).lower()})
        self.url = f"{ws_base}/ari/events?{query}"
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self.app = app
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connected = asyncio.Event()
        self.connections = 0  # successful connects so far
        self.last_error: str | None = None
        self._handlers: dict[str, list[Handler]] = {}
        self._on_connect: list[ConnectCallback] = []
        self._queues: list[asyncio.Queue[Event]] = []
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ws: Any = None

    # ------------------------------------------------------------------ registration
    def on(self, event_type: str | type[Event], handler: Handler) -> Handler:
        name = event_type if isinstance(event_type, str) else event_type.__name__
        self._handlers.setdefault(name, []).append(handler)
        return handler

    def off(self, event_type: str | type[Event], handler: Handler) -> None:
        name = event_type if isinstance(event_type, str) else event_type.__name__
        if handler in self._handlers.get(name, []):
            self._handlers[name].remove(handler)

    def on_connect(self, callback: ConnectCallback) -> None:
        self._on_connect.append(callback)

    def subscribe(self, maxsize: int = 0) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self._queues.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        if q in self._queues:
            self._queues.remove(q)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"ari-events-{self.app}")

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.connected.wait(), timeout)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait([task, *self._tasks])
        self.connected.clear()

    async def _run(self) -> None:
        delay = self.backoff_initial
        while True:
            try:
                async with connect(
                    self.url, additional_headers=self._headers, open_timeout=5,
                    ping_interval=10, ping_timeout=10, max_size=2**22,
                ) as ws:
                    self._ws = ws
                    self.connections += 1
                    self.connected.set()
                    self.last_error = None
                    delay = self.backoff_initial
                    log.info("ARI events connected (%s, #%d)", self.app, self.connections)
                    for cb in list(self._on_connect):
                        self._call(cb, self.connections)
                    async for message in ws:
                        self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except (ConnectionClosed, OSError, asyncio.TimeoutError, Exception) as exc:  # noqa: B014
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
                if self.connected.is_set():
                    log.warning("ARI events disconnected (%s): %s", self.app, self.last_error)
                self.connected.clear()
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self.backoff_max)

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
            event = parse_event(data)
        except (ValueError, TypeError) as exc:
            log.warning("bad ARI event: %s", exc)
            return
        for q in list(self._queues):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("ARI event queue full; dropping %s", event.type)
        for handler in self._handlers.get(event.type, []) + self._handlers.get("*", []):
            self._call(handler, event)

    def _call(self, fn: Callable[..., Any], arg: Any) -> None:
        try:
            result = fn(arg)
        except Exception:
            log.exception("ARI handler %r failed", fn)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ARI handler task failed", exc_info=task.exception())
