"""Rate shopping: ask every carrier at once, under one deadline, and remember the answers.

Carriers are asked in parallel (a thread each; adapters do blocking HTTP). Whatever has not
answered when the deadline passes is left out of this choice, named with `timeout`. Answers are
kept in a TTL cache keyed by the carrier and the normalised request, so an identical parcel on
the same lane within the TTL is not asked again. Failures are never cached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from cachetools import TTLCache

from aoms.domain.errors import AomsError
from aoms.domain.shipping import Quote
from aoms.services.carriers import Carrier, RateRequest


@dataclass(frozen=True, slots=True)
class CarrierFailure:
    carrier: str
    reason: str  # "timeout" | "error: ..."


@dataclass(frozen=True, slots=True)
class ShopResult:
    quotes: tuple[Quote, ...]
    failures: tuple[CarrierFailure, ...]
    asked: int  # carriers asked over the network (the rest came from the cache)
    cached: int
    seconds: float


class RateShopper:
    def __init__(
        self,
        carriers: Sequence[Carrier],
        *,
        deadline_seconds: float = 2.5,
        cache_seconds: float = 600.0,
        cache_size: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
        max_workers: int = 32,
    ) -> None:
        self.carriers = list(carriers)
        self.deadline = deadline_seconds
        self._cache: TTLCache[tuple[object, ...], tuple[Quote, ...]] = TTLCache(
            maxsize=cache_size, ttl=cache_seconds, timer=clock
        )
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rates")
        self.hits = 0
        self.misses = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def shop(self, request: RateRequest, carriers: Sequence[Carrier] | None = None) -> ShopResult:
        started = time.perf_counter()
        key = request.cache_key()
        quotes: list[Quote] = []
        pending: dict[Future[list[Quote]], Carrier] = {}
        cached = 0
        for carrier in carriers if carriers is not None else self.carriers:
            with self._lock:
                hit = self._cache.get((carrier.name, *key))
            if hit is not None:
                quotes.extend(hit)
                cached += 1
                continue
            pending[self._pool.submit(carrier.rates, request)] = carrier
        with self._lock:
            self.hits += cached
            self.misses += len(pending)
        failures: list[CarrierFailure] = []
        if pending:
            done, late = wait(pending, timeout=self.deadline)
            for future in late:
                future.cancel()
                failures.append(CarrierFailure(pending[future].name, "timeout"))
            for future in done:
                carrier = pending[future]
                error = future.exception()
                if error is not None:
                    text = error.message if isinstance(error, AomsError) else repr(error)
                    failures.append(CarrierFailure(carrier.name, f"error: {text}"))
                    continue
                answer = tuple(
                    replace(q, ref={**q.ref, "adapter": carrier.name}) for q in future.result()
                )
                with self._lock:
                    self._cache[(carrier.name, *key)] = answer
                quotes.extend(answer)
        failures.sort(key=lambda f: f.carrier)
        return ShopResult(
            tuple(quotes), tuple(failures), len(pending), cached, time.perf_counter() - started
        )

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
