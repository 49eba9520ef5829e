"""/docs and /redoc without the network: Swagger UI and ReDoc from the fastapi-offline package.

ReDoc's bundle fetches the Redocly logo of its sidebar footer from a CDN, with no option to turn
it off (Redocly/redoc#2108); the copy served here shows an empty local image in its place, so
that opening /redoc sends no request anywhere but to this server."""

import functools
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, Response
from fastapi_offline import FastAPIOffline

STATIC = "/static-offline-docs"
"""Where fastapi-offline serves Swagger UI's and ReDoc's files."""
REDOC_JS = "/redoc/redoc.standalone.js"
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
NO_LOGO = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


def offline_app(**settings: object) -> FastAPI:
    """A FastAPI app (`settings` as for FastAPI) whose /docs and /redoc need no network."""
    app = FastAPIOffline(redoc_url=None, static_url=STATIC, **settings)

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + (app.openapi_url or ""),
            title=f"{app.title} - ReDoc",
            redoc_js_url=root + REDOC_JS,
            redoc_favicon_url=f"{root}{STATIC}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(REDOC_JS, include_in_schema=False)
    def redoc_js() -> Response:
        headers = {"Cache-Control": "max-age=86400"}
        return Response(redoc_bundle(), media_type="text/javascript", headers=headers)

    return app


@functools.cache
def redoc_bundle() -> str:
    """The package's ReDoc bundle with the CDN logo replaced by an empty image."""
    bundle = (files("fastapi_offline") / "static" / "redoc.standalone.js").read_text(encoding="utf-8")
    return bundle.replace(REDOCLY_LOGO, NO_LOGO)
