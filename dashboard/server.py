"""The dashboard's web server: Streamlit (dashboard/app.py) plus wanotify's cookie routes.

Run with `streamlit run dashboard/server.py` (`make run` and the browser tests do):
Streamlit finds `app`, an `st.App`, and serves it with its own uvicorn and settings.

A Streamlit page script cannot set a cookie (it talks to the browser over a websocket;
`st.context.cookies` only reads the cookies of that websocket's handshake). These two
routes can, so the sign-in cookie is HttpOnly (no script on the page can read it),
SameSite=Strict (no other site can make the browser send it) and Secure when the
request came over TLS (directly or through a proxy that says `X-Forwarded-Proto:
https`). Both answer POSTs from the dashboard's own origin only.

- `POST /_wanotify/session` with a one-time claim code as its body (the page that just
  signed in sends it): sets the cookie (core.login_guard.server_sessions.claim).
- `POST /_wanotify/session/end`: revokes the cookie's session and deletes the cookie
  (signing out; the tab that signs out has already revoked its session in the database).
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# `streamlit run dashboard/server.py` puts dashboard/ on sys.path, not the project root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from core import clock  # noqa: E402
from core.login_guard import server_sessions  # noqa: E402
from dashboard import runtime  # noqa: E402

CLAIM_PATH = "/_wanotify/session"
END_PATH = "/_wanotify/session/end"
#: A claim body longer than this is not a claim code.
_MAX_BODY = 200


def _same_origin(request: Request) -> bool:
    """True when the browser says the request comes from a page of this very host.

    Browsers send `Origin` on every POST; a form or script on another site cannot
    forge it, so this refuses cross-site posts (a login-CSRF with someone else's code).
    """
    origin = request.headers.get("origin")
    if not origin:
        return False
    hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")}
    return urlsplit(origin).netloc in hosts - {None}


def _over_tls(request: Request) -> bool:
    """True when the browser reached us over https (directly or through a TLS proxy)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


async def claim(request: Request) -> Response:
    """Trade the body's one-time claim code for the session cookie (204), else 403."""
    if not _same_origin(request):
        return Response(status_code=403)
    body = (await request.body())[: _MAX_BODY + 1]
    code = body.decode("ascii", errors="replace").strip()
    if len(code) > _MAX_BODY:
        return Response(status_code=403)
    token = await run_in_threadpool(server_sessions.claim, runtime.engine(), code, now=clock.now())
    if token is None:
        return Response(status_code=403)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        server_sessions.COOKIE_NAME,
        token,
        max_age=int(server_sessions.LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_over_tls(request),
    )
    return response


async def end(request: Request) -> Response:
    """Revoke the cookie's session (if any) and delete the cookie (204), else 403."""
    if not _same_origin(request):
        return Response(status_code=403)
    token = request.cookies.get(server_sessions.COOKIE_NAME)
    if token:
        await run_in_threadpool(
            lambda: server_sessions.end_session(runtime.engine(), token=token, now=clock.now())
        )
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.delete_cookie(
        server_sessions.COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_over_tls(request),
    )
    return response


app = st.App(
    "app.py",
    routes=[
        Route(CLAIM_PATH, claim, methods=["POST"]),
        Route(END_PATH, end, methods=["POST"]),
    ],
)
