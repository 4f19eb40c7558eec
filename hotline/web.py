"""The web consoles: static pages under /console/ (no build step; plain ES modules in web/).

Pages get every piece of data through the authenticated /v1 API with the bearer token the login page keeps
in sessionStorage; serving the files themselves needs no login. The Content-Security-Policy keeps the
pages on this origin (no CDNs, no inline scripts).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PAGES = {"login": "index.html", "agent": "agent.html", "admin": "admin.html", "supervisor": "supervisor.html"}
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class ConsoleFiles(StaticFiles):
    """Static files revalidated on every load (ETag), so a new release is picked up without a hard refresh."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _page(name: str):  # type: ignore[no-untyped-def]
    path = WEB_DIR / name

    async def page() -> FileResponse:
        return FileResponse(path, media_type="text/html; charset=utf-8", headers=HEADERS)

    return page


def install(app: FastAPI) -> None:
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/console", lambda: RedirectResponse("/console/"), methods=["GET"])
    router.add_api_route("/console/", _page(PAGES["login"]), methods=["GET"])
    for slug, filename in PAGES.items():
        router.add_api_route(f"/console/{slug}", _page(filename), methods=["GET"])
    app.include_router(router)
    app.mount("/console/static", ConsoleFiles(directory=WEB_DIR), name="console-static")
