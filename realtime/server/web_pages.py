"""The server's web pages (speaker, viewer/OBS source) and their assets, served from memory.

Every file is read once when the server is built; a request path is looked up in a fixed table and
never reaches the filesystem (`tests/test_fuzz.py` checks that no file is opened while serving).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

WEB_ROOT = Path(__file__).resolve().parents[2] / "clients" / "web"
PAGES = {"/": "speaker.html", "/viewer": "viewer.html"}  # path -> file; nothing else maps to a file
ASSETS = ("bya.js", "speaker.js", "viewer.js", "style.css")  # served under /web/<name>, read at start-up
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


class WebPages:
    """The pages and assets, read once; `routes()` are aiohttp routes that serve them from memory."""

    def __init__(self, root: Path = WEB_ROOT) -> None:
        names = (*PAGES.values(), *ASSETS)
        self.files = {name: (root / name).read_bytes() for name in names if (root / name).is_file()}

    def routes(self) -> list[web.RouteDef]:
        return [web.get(path, self.page) for path in PAGES] + [web.get("/web/{name}", self.asset)]

    async def page(self, request: web.Request) -> web.Response:
        return self._file(PAGES[request.path])

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        body = self.files.get(name)
        if body is None:
            raise web.HTTPNotFound(text=f"{name} is not installed\n")
        return web.Response(body=body, content_type=CONTENT_TYPES[Path(name).suffix], charset="utf-8")
