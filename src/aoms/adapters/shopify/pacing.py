"""The client's model of Shopify's cost bucket (GraphQL Admin API, calculated query cost).

Shopify keeps one leaky bucket per app and shop: `maximumAvailable` points, refilled at
`restoreRate` points per second; a query runs only if its requested cost fits in what is
available, and the unused part is refunded afterwards. Every answer reports the bucket in
`extensions.cost.throttleStatus`. This model starts from the last report and adds what has
been restored since, so the client waits exactly as long as the next query needs, and no
longer. The report is taken at the moment the answer arrives, a little after Shopify
measured it: the estimate errs on the side of waiting (the bucket only fills in between).
Plain arithmetic, no I/O: the clock is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float

    @classmethod
    def from_extensions(cls, cost: object) -> ThrottleStatus | None:
        """The throttle status in `extensions.cost`, or None when the answer carries none."""
        if not isinstance(cost, dict):
            return None
        status = cost.get("throttleStatus")
        if not isinstance(status, dict):
            return None
        try:
            return cls(
                float(status["maximumAvailable"]),
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


class CostBucket:
    """What the client believes is in the bucket, from the last throttle status it saw.

    Calls are numbered as they are sent. The estimate starts from the report of the latest
    call that has one, and takes off the requested cost of every call sent after it — in
    flight, or answered but not yet in a report that is surely later (a report may already
    count some of them: the estimate errs on the side of waiting, never of a throttle)."""

    def __init__(self) -> None:
        self.status: ThrottleStatus | None = None
        self.seen_at = 0.0
        self.sent = 0  # calls sent so far
        self.reported = 0  # the number of the call whose report the estimate starts from
        self.pending: dict[int, float] = {}  # call -> requested cost, for calls after it

    @property
    def in_flight(self) -> float:
        return sum(self.pending.values())

    def estimate(self, now: float) -> float | None:
        """Points available now, or None before the first answer."""
        if self.status is None:
            return None
        restored = (now - self.seen_at) * self.status.restore_rate
        full = min(self.status.maximum_available, self.status.currently_available + restored)
        return full - self.in_flight

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds to wait before a call of `cost` points fits (0 when it fits now)."""
        available = self.estimate(now)
        if available is None or self.status is None or available >= cost:
            return 0.0
        return (cost - available) / self.status.restore_rate

    def spend(self, cost: float) -> int:
        """A call of `cost` points is on its way; its number, for `observe` and `drop`."""
        self.sent += 1
        self.pending[self.sent] = cost
        return self.sent

    def drop(self, call: int) -> None:
        """The call failed before Shopify counted it (HTTP 429, 5xx, the network)."""
        self.pending.pop(call, None)

    def observe(self, status: ThrottleStatus, now: float, call: int | None = None) -> None:
        """Start from Shopify's report on `call`. A report on a call sent before the one
        already reported is older: it is ignored."""
        if call is None:
            call = self.sent
        if call < self.reported:
            return
        self.reported = call
        self.pending = {c: cost for c, cost in self.pending.items() if c > call}
        self.status = status
        self.seen_at = now

    @staticmethod
    def retry_after_throttle(requested: float, status: ThrottleStatus) -> float:
        """After THROTTLED: the time until the bucket holds the requested cost again."""
        missing = max(0.0, requested - status.currently_available)
        return missing / status.restore_rate if status.restore_rate > 0 else 1.0
