"""Browser tests of the consoles: the real app under uvicorn on a free 127.0.0.1 port (in the test's event loop,
against the test database and Redis), driven by Playwright with Debian's chromium (one browser per session).

Set-up: scripts/setup-web.sh installs chromium, CJK fonts and Playwright when missing (never
`playwright install`). Screenshots go to artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hotline.app import create_app
from hotline.container import Container
from tests import services
from tests.conftest import PASSWORD, REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--lang=zh-CN"]
SHOTS = REPO_ROOT / "artifacts" / "screenshots"
WEB_REDIS_DB = 8  # apart from the Rasa tracker/lock test DBs (10, 11)
VIEWPORT = {"width": 1366, "height": 768}  # a normal laptop screen


def _ready() -> bool:
    try:
        importlib.import_module("playwright.async_api")
    except ImportError:
        return False
    return Path(CHROMIUM).exists() and shutil.which("fc-list") is not None and bool(
        subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout.strip())


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Its own Redis database: another suite's flushdb (DB 9) running beside this one can't wipe live state."""
    services.ensure_redis()
    return f"redis://127.0.0.1:{services.REDIS_PORT}/{WEB_REDIS_DB}"


@pytest.fixture(scope="session")
def web_setup() -> None:
    if not _ready():
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "setup-web.sh")], check=True)
        importlib.invalidate_caches()
    assert _ready(), "scripts/setup-web.sh did not provide chromium, fonts-noto-cjk and playwright"
    SHOTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
async def browser(web_setup: None) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh context per test (own sessionStorage); JavaScript errors on the page fail the test."""
    ctx = await browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    pg = await ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    pg.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error"
          and "status of 4" not in m.text else None)  # 4xx answers are shown to the user, not bugs
    pg.set_default_timeout(10_000)
    yield pg
    await ctx.close()
    assert not errors, "errors in the page:\n" + "\n".join(errors)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, container: Container) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(container.settings, container=container)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws="websockets-sansio",
                                lifespan="on", timeout_graceful_shutdown=3)
        self.server = uvicorn.Server(config)
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # pytest owns signals
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "LiveServer":
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(200):
            if self.server.started:
                return self
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.025)
        raise RuntimeError("uvicorn did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.task:
            await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def live(container: Container) -> AsyncIterator[LiveServer]:
    async with LiveServer(container) as server:
        yield server


@pytest.fixture
async def seats_live(seats: Container) -> AsyncIterator[LiveServer]:
    """The app over the seats stack (`seats` from tests.agent_handoff.conftest, imported by the test modules).
    Ask for it before `page`, so the page closes before the server stops."""
    async with LiveServer(seats) as server:
        yield server


@pytest.fixture
async def api(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client of the same running server (for set-up and for checking what the UI did)."""
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as c:
        yield c


async def token_headers(api: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = await api.post("/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def ui_login(page: Any, live: LiveServer, username: str, password: str = PASSWORD,
                   expect_console: bool = True) -> None:
    await page.goto(f"{live.url}/console/")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#login-btn")
    if expect_console:
        await page.wait_for_url(lambda url: "/console/" in url and not url.split("?")[0].rstrip("/").endswith("/console"))


async def shot(page: Any, name: str, top: bool = False) -> Path:
    """Save what a 1366×768 laptop shows (`top`: scrolled back to the top of the page first)."""
    if top:
        await page.evaluate("window.scrollTo(0, 0)")
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


@pytest.fixture(scope="session")
def screenshots() -> Iterator[Path]:
    yield SHOTS
