"""What the aggregator adapters share: unit conversions, HTTP error handling, timestamps."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import httpx

from aoms.domain.errors import CarrierError

MM_PER_INCH = 25.4
GRAMS_PER_OUNCE = 28.349523125


def inches(mm: int) -> float:
    """Millimetres as inches, rounded up to a tenth (a carrier never measures smaller)."""
    return math.ceil(mm / MM_PER_INCH * 10 - 1e-9) / 10


def ounces(grams: int) -> float:
    return math.ceil(grams / GRAMS_PER_OUNCE * 10 - 1e-9) / 10


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def call(client: httpx.Client, provider: str, method: str, path: str, **kw: Any) -> Any:
    """One request; a transport failure or an error status becomes CarrierError with the
    provider's own message."""
    try:
        response = client.request(method, path, **kw)
    except httpx.TimeoutException as exc:
        raise CarrierError(f"{provider} did not answer in time", provider=provider) from exc
    except httpx.HTTPError as exc:
        raise CarrierError(f"{provider} could not be reached: {exc}", provider=provider) from exc
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:300]}
        message = _message(body) or response.reason_phrase
        raise CarrierError(
            f"{provider} answered {response.status_code}: {message}",
            provider=provider,
            status_code=response.status_code,
        )
    if not response.content:
        return {}
    return response.json()


def _message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # EasyPost: {"error": {"code", "message", "errors"}}
            return str(error.get("message") or error.get("code") or "")
        for key in ("detail", "message", "messages"):
            if body.get(key):
                return str(body[key])
        return str(body)[:300]
    return str(body)[:300]


def download(client: httpx.Client, provider: str, url: str | None) -> bytes | None:
    if not url:
        return None
    try:
        response = client.get(url, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise CarrierError(f"{provider}'s label could not be fetched: {exc}") from exc
    if response.status_code >= 400:
        raise CarrierError(f"{provider}'s label could not be fetched: {response.status_code}")
    return response.content
