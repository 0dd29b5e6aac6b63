"""A fake 3PL that speaks docs/3pl-contract.json over a real socket, and a helper that serves
any ASGI app on a free localhost port in a thread.

The fake checks every request the way a 3PL implementing the contract would: the signature
(computed here with hmac, independently of aoms's code), the timestamp, and the body against
the contract's JSON schema. It answers from a script the test sets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CONTRACT = json.loads((Path(__file__).parents[1] / "docs" / "3pl-contract.json").read_text())
_REGISTRY = Registry().with_resource("urn:aoms-3pl", Resource.opaque(CONTRACT))


def schema_errors(name: str, instance: Any) -> list[str]:
    """What is wrong with `instance` as the contract's component schema `name` ([] if valid)."""
    schema = {"$ref": f"urn:aoms-3pl#/components/schemas/{name}"}
    validator = Draft202012Validator(schema, registry=_REGISTRY)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def sign(secret: str, body: bytes, at: float | None = None) -> dict[str, str]:
    ts = str(int(time.time() if at is None else at))
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Aoms-Timestamp": ts,
        "X-Aoms-Signature": f"sha256={mac}",
        "Content-Type": "application/json",
    }


class Fake3pl:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.requests: list[dict[str, Any]] = []
        self.cancels: list[dict[str, Any]] = []
        self.problems: list[str] = []  # anything aoms sent that the contract does not allow
        self.script: deque[tuple[int, dict[str, Any]]] = deque()  # next answers to requests
        self.cancel_script: deque[dict[str, Any]] = deque()
        self.answered: dict[int, tuple[int, dict[str, Any]]] = {}  # idempotent by FO id
        self.app = Starlette(
            routes=[
                Route("/fulfilment-requests", self._request, methods=["POST"]),
                Route(
                    "/fulfilment-requests/{fo_id:int}/cancellation", self._cancel, methods=["POST"]
                ),
            ]
        )

    def _check(self, request: Request, body: bytes) -> str | None:
        ts = request.headers.get("x-aoms-timestamp", "")
        given = request.headers.get("x-aoms-signature", "")
        mac = hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256)
        if not hmac.compare_digest(f"sha256={mac.hexdigest()}", given):
            return "bad signature"
        if abs(time.time() - int(ts)) > 300:
            return "stale timestamp"
        return None

    async def _request(self, request: Request) -> JSONResponse:
        body = await request.body()
        data = json.loads(body)
        if self.script and self.script[0][0] >= 500:  # an outage: before anything else
            status, answer = self.script.popleft()
            return JSONResponse(answer, status_code=status)
        if (why := self._check(request, body)) is not None:
            self.problems.append(why)
            return JSONResponse({"error": why}, status_code=401)
        self.problems += schema_errors("FulfilmentRequest", data)
        self.requests.append(data)
        fo_id = data["fulfilment_order_id"]
        if fo_id not in self.answered:
            self.answered[fo_id] = (
                self.script.popleft()
                if self.script
                else (200, {"status": "received", "reference": f"3PL-{fo_id}"})
            )
        status, answer = self.answered[fo_id]
        if status == 200:
            self.problems += schema_errors("RequestAnswer", answer)
        return JSONResponse(answer, status_code=status)

    async def _cancel(self, request: Request) -> JSONResponse:
        body = await request.body()
        if self.cancel_script and self.cancel_script[0].get("http_status", 200) >= 500:
            outage = self.cancel_script.popleft()  # an outage: before anything else
            return JSONResponse({"error": "unavailable"}, status_code=outage["http_status"])
        if (why := self._check(request, body)) is not None:
            self.problems.append(why)
            return JSONResponse({"error": why}, status_code=401)
        data = json.loads(body)
        self.problems += schema_errors("CancelRequest", data)
        if data["fulfilment_order_id"] != request.path_params["fo_id"]:
            self.problems.append("cancel body and path disagree")
        self.cancels.append(data)
        answer = (
            self.cancel_script.popleft() if self.cancel_script else {"status": "cancel_pending"}
        )
        return JSONResponse(answer)

    def call_back(
        self,
        aoms_url: str,
        location_id: str,
        message: dict[str, Any],
        *,
        secret: str | None = None,
        at: float | None = None,
    ) -> httpx.Response:
        """POST a signed callback to aoms, as the 3PL would; the message must be valid."""
        assert schema_errors("Callback", message) == [], schema_errors("Callback", message)
        body = json.dumps(message).encode()
        return httpx.post(
            f"{aoms_url}/v1/3pl/{location_id}/callbacks",
            content=body,
            headers=sign(secret or self.secret, body, at),
            timeout=10,
        )


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free localhost port; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
