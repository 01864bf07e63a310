"""The web app (built by Vite into ``parley/static``) and the offline API docs.

Hashed assets are cached forever; ``index.html`` never is, so a new build is
picked up at the next load. Unknown non-API paths get ``index.html`` (the app
routes on the client). Files are resolved inside the static folder only.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from parley.http.guard import GuardedRoute
from parley.http.problems import error_response, problem_response

mimetypes.add_type("application/manifest+json", ".webmanifest")

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Parley</title>
<body><h1>Parley's web app is not built</h1><p>Run <code>make run</code> (or
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>) and reload. The API is
up: see <a href="/docs">/docs</a>.</p></body></html>"""


def mount_web(app: FastAPI, static_dir: Path = STATIC_DIR) -> None:
    router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
    assets = static_dir / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="assets")
    docs_assets = static_dir / "docs"

    @router.get("/docs")
    def docs() -> HTMLResponse:
        if not (docs_assets / "swagger-ui-bundle.js").is_file():
            return HTMLResponse(
                "<p>API docs assets are not built; the OpenAPI document is at "
                '<a href="/openapi.json">/openapi.json</a>.</p>'
            )
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Parley API",
            swagger_js_url="/static-docs/swagger-ui-bundle.js",
            swagger_css_url="/static-docs/swagger-ui.css",
            swagger_favicon_url="/favicon.svg",
        )

    @router.get("/static-docs/{name}")
    def docs_asset(name: str) -> Response:
        if name not in ("swagger-ui-bundle.js", "swagger-ui.css"):
            return Response(status_code=404)
        return FileResponse(docs_assets / name, headers={"Cache-Control": "public, max-age=86400"})

    @router.get("/{path:path}")
    def spa(path: str) -> Response:
        if path.startswith(("api/", "v1/")):
            return error_response("/" + path, 404, "No such endpoint.", "not_found")
        index = static_dir / "index.html"
        if path:
            try:  # a NUL byte (``%00``) or a name too long for the OS: no such file
                candidate = (static_dir / path).resolve()
                found = candidate.is_file() and candidate.is_relative_to(static_dir.resolve())
            except (ValueError, OSError):
                return problem_response(404, "No such page.", "not_found")
            if found:
                cache = (
                    "no-cache"
                    if candidate.name in ("sw.js", "index.html")
                    else "public, max-age=3600"
                )
                return FileResponse(candidate, headers={"Cache-Control": cache})
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.include_router(router)
