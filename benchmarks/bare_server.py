"""The reference point: a bare aiohttp JSON endpoint, nothing else.

Run as `python -m benchmarks.bare_server --port P`; it answers `GET /json`
with a small JSON object, the same way Groundstation's handlers serialise.
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def bare_json(request: web.Request) -> web.Response:
    return web.json_response({"success": True, "message": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser(description="A bare aiohttp JSON endpoint (GET /json).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/json", bare_json)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
