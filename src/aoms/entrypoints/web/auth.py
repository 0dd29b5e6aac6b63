"""Dashboard sign-in: sessions in the database behind an HttpOnly cookie, CSRF tokens on every
form that changes something, and roles checked on the server for every action."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.responses import Response

from aoms.adapters.db.users import SESSION_HOURS, Session, SqlUserStore
from aoms.bootstrap import Runtime
from aoms.domain.users import Role

SESSION_SECONDS = SESSION_HOURS * 3600
COOKIE = "aoms_session"
LOGIN_CSRF_COOKIE = "aoms_login_csrf"


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class Forbidden(Exception):
    def __init__(self, session: Session, needed: Role, action: str) -> None:
        self.session = session
        self.needed = needed
        self.action = action


class BadCsrf(Exception):
    pass


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def users(request: Request) -> SqlUserStore:
    return SqlUserStore(runtime(request).store)


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def current_session(request: Request) -> Session | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return users(request).session(token, runtime(request).clock())


def signed_in(request: Request) -> Session:
    """Any signed-in user (a viewer may read every page)."""
    session = current_session(request)
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(quote(path, safe="/?=&"))
    request.state.session = session
    return session


Viewer = Annotated[Session, Depends(signed_in)]


async def check_csrf(request: Request, session: Session) -> None:
    form = await request.form()
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
        raise BadCsrf


def require(session: Session, needed: Role, action: str) -> None:
    if not session.user.role.may(needed):
        raise Forbidden(session, needed, action)


def login_csrf_token(request: Request) -> str:
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
