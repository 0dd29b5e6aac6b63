"""Signatures of 3PL messages, both ways: HMAC-SHA256 with the connection's secret over
`timestamp + "." + raw body`, so neither the body nor its time can be changed, and a
timestamp too far from our clock (a replay) is refused."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from aoms.domain.errors import InvalidSignature

TIMESTAMP = "X-Aoms-Timestamp"
SIGNATURE = "X-Aoms-Signature"
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sign(secret: str, body: bytes, now: datetime) -> dict[str, str]:
    """The headers that sign `body` at `now`."""
    ts = str(int(now.timestamp()))
    return {TIMESTAMP: ts, SIGNATURE: signature(secret, ts, body)}


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    given: str | None,
    now: datetime,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise `InvalidSignature` unless `given` signs `body` at `timestamp`, near `now`."""
    if not timestamp or not given:
        raise InvalidSignature(f"{TIMESTAMP} and {SIGNATURE} are required")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise InvalidSignature(f"{TIMESTAMP} must be Unix seconds", field=TIMESTAMP)
    skew = abs(now.timestamp() - int(timestamp))
    if skew > tolerance:
        raise InvalidSignature(
            f"{TIMESTAMP} is {int(skew)} s from our clock (at most {tolerance} s): a replay, or "
            "a clock that is wrong",
            field=TIMESTAMP,
        )
    if not hmac.compare_digest(signature(secret, timestamp, body), given):
        raise InvalidSignature(f"{SIGNATURE} does not match the body", field=SIGNATURE)
