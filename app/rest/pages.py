"""The pages people open in a browser, built from `web/` into `app/static` (docs/operations.md
§13): the dashboard at `/` and its views (`/satellites/{id}`, `/teams/{id}`, `/alerts`,
`/account`: one page that shows the view its address names), `/login`, and GraphiQL at
`/graphql` (`app/rest/graphql.py`).

Everything is served from this server; the Content-Security-Policy allows nothing from
another host, so a page works offline and on a locked-down network.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent.parent / "static"
# Scripts, styles, fonts and images from this server only; the API and its websocket.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def page(name: str) -> web.Response:
    """A built page (`index`, `login`, `graphiql`), or 503 when the package was built
    without its pages."""
    path = STATIC / f"{name}.html"
    if not path.is_file():
        return web.Response(status=503, text="The web pages are not built: run `npm run build` "
                            "in web/ (docs/operations.md §13)", content_type="text/plain")
    return web.Response(body=path.read_bytes(), content_type="text/html", charset="utf-8",
                        headers=PAGE_HEADERS)


async def home(request: web.Request) -> web.Response:
    return page("index")


async def login(request: web.Request) -> web.Response:
    return page("login")


# Addresses of the dashboard's views; each answers the same page (it reads its address).
DASHBOARD_PATHS = ("/", "/alerts", "/account", "/satellites/{id}", "/teams/{id}")


def add_page_routes(app: web.Application) -> None:
    for path in DASHBOARD_PATHS:
        app.router.add_get(path, home)
    app.router.add_get("/login", login)
    assets = STATIC / "assets"
    if assets.is_dir():
        app.router.add_static("/static/assets/", assets, append_version=False)


__all__ = ["DASHBOARD_PATHS", "add_page_routes", "page"]
