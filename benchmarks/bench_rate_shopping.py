"""Rate shopping: fan-out under a deadline against slow, flaky carriers, over real HTTP.

Four local carrier fakes (two speaking EasyPost's API, two Shippo's, each on its own port)
answer after a uniform 200–800 ms; 2% of their answers take 3 s (a timeout for us). Each rate
shop asks all four in parallel with one deadline (`--deadline`, default 1.0 s) through the real
adapters, and chooses. Measured in the same run:
* the fan-out: time to a choice, p50/p99/max, against the deadline + 50 ms;
* the baseline: the same carriers asked one after another (each with the same timeout);
* the cache: hit rate of the quote cache on a replayed order stream — the Olist sample's orders
  in purchase order (sellers → customers by ZIP prefix, parcels from the products' real sizes
  and weights), simulated clock, 10-minute TTL — once as placed, and once with each order
  quoted again when its label is bought 5 minutes later.

    .venv/bin/python benchmarks/bench_rate_shopping.py [--shops 300] [--sequential 40]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import multiprocessing
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the carrier fakes live with the tests

from tests.fakes.easypost import FakeEasyPost  # noqa: E402
from tests.fakes.server import FakeServer, Request  # noqa: E402
from tests.fakes.shippo import FakeShippo  # noqa: E402

from aoms.adapters.carriers.easypost import EasyPostCarrier  # noqa: E402
from aoms.adapters.carriers.shippo import ShippoCarrier  # noqa: E402
from aoms.domain.cartonise import Box, cartonise  # noqa: E402
from aoms.domain.errors import AomsError  # noqa: E402
from aoms.domain.money import Money  # noqa: E402
from aoms.domain.shipping import Dimensions, Parcel, Quote, ShippingRule, choose  # noqa: E402
from aoms.services.carriers import RateRequest, ShipAddress  # noqa: E402
from aoms.services.rate_shopping import RateShopper  # noqa: E402

OLIST = ROOT.parent / "shared" / "data" / "olist" / "sample_8k_orders_cab-g_bravida-analytics-case"
BOXES = [
    Box("S", Dimensions(250, 200, 100), 5_000, 150),
    Box("M", Dimensions(400, 300, 200), 15_000, 300),
    Box("L", Dimensions(600, 400, 400), 30_000, 600),
    Box("XL", Dimensions(1000, 600, 600), 30_000, 1_200),
]


def _delay(rng: random.Random) -> Any:
    def delay(req: Request) -> float:
        if req.path.startswith("/labels/"):
            return 0.0
        return 3.0 if rng.random() < 0.02 else rng.uniform(0.2, 0.8)

    return delay


def _request(i: int) -> RateRequest:
    rng = random.Random(i)
    parcel = Parcel(Dimensions(rng.randint(100, 400), rng.randint(100, 300), rng.randint(50, 200)),
                    rng.randint(100, 9_000))  # fmt: skip
    return RateRequest(
        ShipAddress(name="DC", street1="1 Hudson Pl", city="Hoboken", state="NJ", zip="07030"),
        ShipAddress(name=f"C{i}", street1="1 Main St", city="X", state="CA",
                    zip=f"{90001 + i % 900:05d}"),
        parcel,
        "USD",
    )  # fmt: skip


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _serve_fakes(conn: Connection, seed: int) -> None:
    """In a process of its own (the carriers do not share our interpreter), four fakes."""
    rng = random.Random(seed)
    with ExitStack() as stack:
        urls = []
        for i in range(2):
            ep = FakeEasyPost(api_key=f"EZ{i}")
            server = stack.enter_context(FakeServer(ep, delay=_delay(random.Random(rng.random()))))
            ep.base_url = server.url
            sh = FakeShippo(token=f"tok{i}")
            server2 = stack.enter_context(FakeServer(sh, delay=_delay(random.Random(rng.random()))))
            sh.base_url = server2.url
            urls.append((server.url, server2.url))
        conn.send(urls)
        conn.recv()  # until told to stop


def fan_out(shops: int, sequential: int, deadline: float, seed: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe()
    fakes = ctx.Process(target=_serve_fakes, args=(theirs, seed), daemon=True)
    fakes.start()
    urls = ours.recv()
    try:
        return _fan_out(urls, shops, sequential, deadline)
    finally:
        ours.send("stop")
        fakes.join(timeout=10)


def _fan_out(
    urls: list[tuple[str, str]], shops: int, sequential: int, deadline: float
) -> dict[str, Any]:
    carriers: list[Any] = []
    for i, (ep_url, sh_url) in enumerate(urls):
        carriers.append(EasyPostCarrier(f"EZ{i}", base_url=ep_url + "/v2", timeout=deadline,
                                        name=f"easypost{i}"))  # fmt: skip
        carriers.append(ShippoCarrier(f"tok{i}", base_url=sh_url, timeout=deadline,
                                      name=f"shippo{i}"))  # fmt: skip
    shopper = RateShopper(
        carriers, deadline_seconds=deadline, cache_seconds=0.000001, max_workers=64
    )
    rule = ShippingRule()
    today = date(2026, 12, 7)

    def one_parallel(i: int) -> tuple[float, list[str], bool]:
        started = time.perf_counter()
        result = shopper.shop(_request(i))
        choice = choose(result.quotes, rule, ship_on=today, deliver_by=None, records={})
        reasons = [f.reason[:60] for f in result.failures]
        return time.perf_counter() - started, reasons, choice is not None

    def one_sequential(i: int) -> float:
        started = time.perf_counter()
        quotes: list[Quote] = []
        for carrier in carriers:
            with contextlib.suppress(AomsError):  # a timeout: the fan-out's own per-call limit
                quotes.extend(carrier.rates(_request(i)))
        choose(quotes, rule, ship_on=today, deliver_by=None, records={})
        return time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=8) as pool:  # 8 orders being shipped at once
        parallel = list(pool.map(one_parallel, range(shops)))
        serial = list(pool.map(one_sequential, range(10_000, 10_000 + sequential)))
    shopper.close()
    for c in carriers:
        c.close()
    times = [t for t, _, _ in parallel]
    failures = Counter(reason for _, reasons, _ in parallel for reason in reasons)
    return {
        "shops": shops,
        "deadline_s": deadline,
        "carrier_calls": shops * 4,
        "carrier_failures": dict(failures),
        "chosen": sum(1 for *_, ok in parallel if ok),
        "parallel_p50_s": round(statistics.median(times), 3),
        "parallel_p99_s": round(_pct(times, 0.99), 3),
        "parallel_max_s": round(max(times), 3),
        "p99_within_deadline_plus_50ms": _pct(times, 0.99) <= deadline + 0.05,
        "sequential_shops": sequential,
        "sequential_p50_s": round(statistics.median(serial), 3),
        "sequential_p99_s": round(_pct(serial, 0.99), 3),
        "sequential_over_parallel_p50": round(
            statistics.median(serial) / statistics.median(times), 2
        ),
    }


class Counting:
    """An instant carrier for the cache replay (latency does not change a hit rate)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def rates(self, request: RateRequest) -> list[Quote]:
        self.calls += 1
        return [Quote(self.name, "standard", Money.of("10.00", request.currency), 5)]


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def olist_stream() -> list[tuple[float, list[RateRequest]]]:
    def rows(name: str) -> list[dict[str, str]]:
        with (OLIST / name).open(encoding="utf-8-sig", newline="") as f:
            return list(csv.DictReader(f))

    products = {}
    for p in rows("olist_products_dataset.csv"):
        try:
            dims = Dimensions(*(int(float(p[f"product_{k}_cm"]) * 10) or 10
                                for k in ("length", "width", "height")))  # fmt: skip
            products[p["product_id"]] = (dims, int(float(p["product_weight_g"])) or 1)
        except (ValueError, TypeError):
            continue
    sellers = {
        s["seller_id"]: s["seller_zip_code_prefix"].zfill(5)
        for s in rows("olist_sellers_dataset.csv")
    }
    customers = {c["customer_id"]: c["customer_zip_code_prefix"].zfill(5)
                 for c in rows("olist_customers_dataset.csv")}  # fmt: skip
    items: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for it in rows("olist_order_items_dataset.csv"):
        items[it["order_id"], it["seller_id"]][it["product_id"]] += 1
    by_order: dict[str, list[tuple[str, dict[str, int]]]] = defaultdict(list)
    for (order_id, seller), lines in items.items():
        by_order[order_id].append((seller, lines))
    stream = []
    for o in sorted(rows("olist_orders_dataset.csv"), key=lambda o: o["order_purchase_timestamp"]):
        if o["order_id"] not in by_order or o["customer_id"] not in customers:
            continue
        at = datetime.fromisoformat(o["order_purchase_timestamp"]).timestamp()
        requests = []
        for seller, lines in by_order[o["order_id"]]:
            if seller not in sellers or any(p not in products for p in lines):
                continue
            try:
                parcels = cartonise(lines, {p: products[p] for p in lines}, BOXES)
            except AomsError:
                continue
            for parcel in parcels:
                requests.append(RateRequest(
                    ShipAddress(zip=sellers[seller], country="BR"),
                    ShipAddress(zip=customers[o["customer_id"]], country="BR"),
                    parcel, "BRL"))  # fmt: skip
        if requests:
            stream.append((at, requests))
    return stream


def cache_replay() -> dict[str, Any]:
    if not OLIST.exists():
        return {"skipped": "../shared/data/olist is not beside the checkout"}
    stream = olist_stream()
    out: dict[str, Any] = {"orders": len(stream), "parcels": sum(len(r) for _, r in stream)}
    for label, requote in (("as_placed", False), ("requoted_at_label", True)):
        clock = Clock()
        carriers = [Counting(f"c{i}") for i in range(4)]
        shopper = RateShopper(carriers, cache_seconds=600, clock=clock)
        events = [(at, reqs) for at, reqs in stream]
        if requote:
            events += [(at + 300, reqs) for at, reqs in stream]
            events.sort(key=lambda e: e[0])
        for at, reqs in events:
            clock.now = at
            for r in reqs:
                shopper.shop(r)
        shopper.close()
        out[label] = {"carrier_asks": shopper.hits + shopper.misses, "hits": shopper.hits,
                      "hit_rate": round(shopper.hit_rate, 4)}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", type=int, default=300)
    parser.add_argument("--sequential", type=int, default=40)
    parser.add_argument("--deadline", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    result = {
        "fan_out": fan_out(args.shops, args.sequential, args.deadline, args.seed),
        "cache": cache_replay(),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
