"""`aoms replay olist`: replay a real order history through the same services as the API."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoms.adapters.db import queries, setup
from aoms.adapters.db.engine import make_engine
from aoms.adapters.db.migrate import upgrade
from aoms.adapters.db.store import SqlStore
from aoms.adapters.geocode import geocode
from aoms.adapters.importers.olist import OlistData
from aoms.bootstrap import utc_now
from aoms.domain.routing import Policy
from aoms.services.orders import receive_order


@dataclass(frozen=True)
class PolicyRun:
    policy: Policy
    kpis: dict[str, Any]
    seconds: float

    @property
    def throughput(self) -> float:
        return self.kpis["orders"] / self.seconds if self.seconds else 0.0


def replay(
    data: OlistData,
    policy: Policy,
    *,
    database_url: str | None = None,
    handling: str = "2.00",
    progress: Callable[[int], None] | None = None,
) -> PolicyRun:
    """Load the network into a fresh database and replay every order in time order."""
    with tempfile.TemporaryDirectory(prefix="aoms-replay-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / f'replay-{policy.value}.db'}"
        engine = make_engine(url)
        try:
            upgrade(engine)
            network: dict[str, object] = {
                "shop": "olist", "currency": "BRL", "routing_policy": policy.value,
                "rate_card": data.rate_card.as_dict(),
                "locations": [
                    {"id": loc.id, "name": loc.name, "lat": loc.point.lat, "lng": loc.point.lng,
                     "country_code": "BR", "region": loc.id.upper(), "handling_cost": handling}
                    for loc in data.locations
                ],
                "stock": [{"sku": sku, "location_id": loc_id, "on_hand": n}
                          for (sku, loc_id), n in sorted(data.stock.items())],
            }  # fmt: skip
            with engine.begin() as conn:
                setup.load_store(conn, network, utc_now(), reference="olist")
            store = SqlStore(engine)
            started = time.perf_counter()
            for i, order in enumerate(data.orders):
                with store.transaction() as tx:
                    receive_order(tx, order, geocode=geocode, now=order.placed_at)
                if progress and i % 100 == 99:
                    progress(100)
            seconds = time.perf_counter() - started
            if progress:
                progress(len(data.orders) % 100)
            with engine.connect() as conn:
                kpis = queries.network_kpis(conn)
        finally:
            engine.dispose()
    return PolicyRun(policy, kpis, seconds)
