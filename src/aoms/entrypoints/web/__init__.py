"""The operations dashboard: server-rendered pages (Jinja2) with htmx and Chart.js, shipped
inside the package (static/vendor), mounted at / beside the API by `install(app)`."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from aoms.domain.errors import AomsError
from aoms.entrypoints.web import auth, review
from aoms.entrypoints.web import returns as return_pages
from aoms.entrypoints.web.pages import router
from aoms.entrypoints.web.render import HERE, templates

API_PREFIXES = ("/v1/", "/webhooks/", "/health", "/ready", "/docs", "/openapi", "/redoc")


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(API_PREFIXES)


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    response = templates.TemplateResponse(
        request,
        "error.html",
        {"session": getattr(request.state, "session", None), "title": title, "message": message},
        status_code=status,
    )
    return response


def install(app: FastAPI) -> None:
    """Mount the dashboard on `app`: its static files, its pages, and HTML error pages for
    them (the API's own routes keep their problem+json answers)."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.include_router(review.router)
    app.include_router(return_pages.router)
    api_error = app.exception_handlers.get(AomsError)

    async def aoms_error(request: Request, exc: Exception) -> Any:
        if not _is_page(request) and api_error is not None:
            answer = api_error(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        assert isinstance(exc, AomsError)
        return _error_page(request, exc.status, exc.code.replace("_", " "), exc.message)

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, auth.LoginRequired)
        url = "/login?next=" + quote(exc.next_url, safe="")
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, auth.Forbidden)
        return _error_page(
            request,
            403,
            "Not allowed",
            f"Your role ({exc.session.user.role.label}) may not {exc.action}: "
            f"that needs the {exc.needed.label} role.",
        )

    async def bad_csrf(request: Request, exc: Exception) -> Response:
        return _error_page(
            request,
            403,
            "Form expired",
            "The form's security token did not match: reload the page and try again.",
        )

    app.add_exception_handler(AomsError, aoms_error)
    app.add_exception_handler(auth.LoginRequired, login_required)
    app.add_exception_handler(auth.Forbidden, forbidden)
    app.add_exception_handler(auth.BadCsrf, bad_csrf)

    @app.middleware("http")
    async def server_timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.2f}"
        if _is_page(request) and not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
