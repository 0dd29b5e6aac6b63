"""The REST/JSON 3PL contract over real HTTP: aoms and a fake 3PL each on a free localhost
port, every body checked against docs/3pl-contract.json, on SQLite and PostgreSQL.

Network (tests.builders): A 50 km from the customer, B 80 km. A holds 10 X, B 5 X.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from aoms.adapters.db import schema as t
from aoms.adapters.db.handoff import SqlHandoffStore
from aoms.adapters.geocode import geocode
from aoms.adapters.tpl.channels import channels
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from aoms.services import handoff as svc
from aoms.services import orders
from tests.builders import T0, network, order
from tests.fake_3pl import Fake3pl, schema_errors, serving, sign
from tests.integration.test_handoff import active_reservations, assert_nothing_stuck, stock

SECRET = "3pl-shared-secret-0123456789"


@dataclass
class World:
    rt: Runtime
    hstore: SqlHandoffStore
    fake: Fake3pl
    aoms: str  # aoms's base URL
    threepl: str  # the fake 3PL's base URL

    def send(self) -> dict[str, Any]:
        return svc.send_pending(self.hstore, channels(self.rt.clock), clock=self.rt.clock).as_dict()

    def order(self, *lines: tuple[str, int], external_id: str = "1001") -> int:
        with self.rt.store.transaction() as tx:
            got = orders.receive_order(
                tx, order(*lines, external_id=external_id), geocode=geocode, now=T0
            )
        return got.order_id

    def fo(self, fo_id: int) -> dict[str, Any]:
        found = self.hstore.fulfilment_order(fo_id)
        assert found is not None
        return found

    def fos_of(self, order_id: int) -> list[int]:
        with self.hstore.handoff_transaction() as htx:
            return [f.id for f in htx.order_fos(order_id)]


@pytest.fixture
def world(runtime: Runtime) -> Iterator[World]:
    network(runtime.engine, {("X", "a"): 10, ("X", "b"): 5})
    fake = Fake3pl(SECRET)
    with serving(fake.app) as threepl, serving(create_app(runtime, migrate_on_start=False)) as url:
        put = httpx.put(
            f"{url}/v1/locations/a/3pl-connection",
            json={"kind": "rest", "base_url": threepl, "secret": SECRET},
        )
        assert put.status_code == 200, put.text
        assert "secret" not in put.json()
        yield World(runtime, SqlHandoffStore(runtime.store), fake, url, threepl)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def test_request_accept_partial_ship_and_cancel_over_http(world: World) -> None:
    oid = world.order(("X", 3))
    [fo_id] = world.fos_of(oid)
    report = world.send()
    assert (report["claimed"], report["delivered"]) == (1, 1)
    [sent] = world.fake.requests
    assert sent["fulfilment_order_id"] == fo_id and sent["lines"] == [
        {"line_no": 1, "sku": "X", "quantity": 3}
    ]
    assert world.fake.problems == []
    assert world.fo(fo_id)["status"] == "requested"
    assert world.fo(fo_id)["handoff"]["external_ref"] == f"3PL-{fo_id}"
    assert world.send()["delivered"] == 0  # acknowledged: not sent again

    accepted = {
        "event_id": "e-1",
        "type": "accepted",
        "fulfilment_order_id": fo_id,
        "occurred_at": now_iso(),
    }
    first = world.fake.call_back(world.aoms, "a", accepted)
    assert first.status_code == 200, first.text
    assert schema_errors("CallbackOutcome", first.json()) == []
    assert (first.json()["status"], first.json()["duplicate"]) == ("accepted", False)
    repeat = world.fake.call_back(world.aoms, "a", accepted)
    assert repeat.json() == {**first.json(), "duplicate": True}

    shipped = {
        "event_id": "e-2",
        "type": "shipped",
        "fulfilment_order_id": fo_id,
        "occurred_at": now_iso(),
        "shipment": {
            "shipment_id": "S-1",
            "lines": [{"sku": "X", "quantity": 1}],
            "tracking": {"number": "1Z999AA10123456784", "carrier": "UPS"},
            "shipped_at": now_iso(),
        },
    }
    answer = world.fake.call_back(world.aoms, "a", shipped)
    assert answer.json()["status"] == "partly_shipped"
    assert stock(world.rt)[("X", "a")] == (9, 2)

    cancel = httpx.post(f"{world.aoms}/v1/fulfilment-orders/{fo_id}/cancel")
    assert (cancel.json()["status"], cancel.json()["changed"]) == ("cancel_requested", True)
    again = httpx.post(f"{world.aoms}/v1/fulfilment-orders/{fo_id}/cancel")
    assert again.json()["changed"] is False and "already requested" in again.json()["detail"]
    assert world.send()["cancels_sent"] == 1
    assert [c["fulfilment_order_id"] for c in world.fake.cancels] == [fo_id]
    assert world.send()["cancels_sent"] == 0  # delivered once

    done = world.fake.call_back(
        world.aoms,
        "a",
        {
            "event_id": "e-3",
            "type": "cancelled",
            "fulfilment_order_id": fo_id,
            "occurred_at": now_iso(),
        },
    )
    assert done.json()["status"] == "cancelled"
    twice = world.fake.call_back(
        world.aoms,
        "a",
        {
            "event_id": "e-4",
            "type": "cancelled",
            "fulfilment_order_id": fo_id,
            "occurred_at": now_iso(),
        },
    )
    assert (twice.json()["changed"], twice.json()["duplicate"]) == (False, False)
    assert "already cancelled" in twice.json()["detail"]
    assert stock(world.rt) == {("X", "a"): (9, 0), ("X", "b"): (5, 0)}
    assert world.fake.problems == []
    detail = httpx.get(f"{world.aoms}/v1/fulfilment-orders/{fo_id}").json()
    assert detail["shipments"][0]["tracking_number"] == "1Z999AA10123456784"
    assert_nothing_stuck(world.rt)


def test_an_immediate_not_in_stock_answer_routes_the_order_to_the_next_location(
    world: World,
) -> None:
    world.fake.script.append((200, {"status": "rejected", "reason": "not_in_stock"}))
    oid = world.order(("X", 2))
    [fo_id] = world.fos_of(oid)
    world.send()
    assert world.fo(fo_id)["status"] == "rejected"
    assert world.fo(fo_id)["handoff"]["reject_reason"] == "not_in_stock"
    assert stock(world.rt) == {("X", "a"): (0, 0), ("X", "b"): (5, 2)}
    [_, new] = world.fos_of(oid)
    assert (world.fo(new)["location_id"], world.fo(new)["status"]) == ("b", "open")
    assert active_reservations(world.rt) == {("X", "b"): 2}


def test_unsigned_forged_or_replayed_callbacks_are_refused_and_change_nothing(
    world: World,
) -> None:
    oid = world.order(("X", 1))
    [fo_id] = world.fos_of(oid)
    world.send()
    msg = {
        "event_id": "e-9",
        "type": "accepted",
        "fulfilment_order_id": fo_id,
        "occurred_at": now_iso(),
    }
    forged = world.fake.call_back(world.aoms, "a", msg, secret="not-the-secret-at-all")
    stale = world.fake.call_back(world.aoms, "a", msg, at=time.time() - 301)
    unsigned = httpx.post(f"{world.aoms}/v1/3pl/a/callbacks", json=msg)
    for answer in (forged, stale, unsigned):
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_signature"
        assert schema_errors("Problem", answer.json()) == []
    assert "from our clock" in stale.json()["detail"]
    assert world.fo(fo_id)["status"] == "requested"
    # another location's 3PL cannot touch A's fulfilment orders
    elsewhere = world.fake.call_back(world.aoms, "b", msg)
    assert elsewhere.status_code == 401
    ok = world.fake.call_back(world.aoms, "a", msg)
    assert ok.json()["status"] == "accepted"


def test_a_shipment_of_more_than_was_asked_is_refused_with_its_code(world: World) -> None:
    oid = world.order(("X", 1))
    [fo_id] = world.fos_of(oid)
    world.send()
    too_many = world.fake.call_back(
        world.aoms,
        "a",
        {
            "event_id": "e-5",
            "type": "shipped",
            "fulfilment_order_id": fo_id,
            "occurred_at": now_iso(),
            "shipment": {
                "shipment_id": "S",
                "lines": [{"sku": "X", "quantity": 2}],
                "shipped_at": now_iso(),
            },
        },
    )
    assert (too_many.status_code, too_many.json()["code"]) == (422, "over_shipment")
    assert stock(world.rt)[("X", "a")] == (10, 1)


def test_a_3pl_that_stays_down_is_retried_then_undone_and_the_lines_go_elsewhere(
    world: World,
) -> None:
    clock = [datetime.now(UTC)]
    world.rt.clock = lambda: clock[0]
    world.fake.script.extend([(503, {"error": "maintenance"})] * svc.MAX_ATTEMPTS)
    oid = world.order(("X", 2))
    [fo_id] = world.fos_of(oid)
    for attempt in range(1, svc.MAX_ATTEMPTS + 1):
        report = world.send()
        state = world.fo(fo_id)["handoff"]
        assert state["attempts"] == attempt
        if attempt < svc.MAX_ATTEMPTS:
            assert report["retrying"] == 1 and world.fo(fo_id)["status"] == "requested"
            assert world.send()["retrying"] == 0  # not due yet: no extra attempt
            clock[0] += timedelta(minutes=11)
    assert report["undone"] == 1
    assert world.fo(fo_id)["status"] == "rejected"
    assert "not delivered after 5 attempts" in world.fo(fo_id)["handoff"]["reject_note"]
    assert stock(world.rt) == {("X", "a"): (10, 0), ("X", "b"): (5, 2)}  # no stock lost


def test_a_request_the_3pl_refuses_as_invalid_is_undone_at_once(world: World) -> None:
    world.fake.script.append((400, {"error": "unknown SKU X"}))
    oid = world.order(("X", 2))
    [fo_id] = world.fos_of(oid)
    assert world.send()["undone"] == 1
    assert world.fo(fo_id)["status"] == "rejected"
    assert stock(world.rt) == {("X", "a"): (10, 0), ("X", "b"): (5, 2)}


def test_a_cancel_request_that_cannot_be_delivered_is_retried_then_left_to_a_person(
    world: World,
) -> None:
    clock = [datetime.now(UTC)]
    world.rt.clock = lambda: clock[0]
    world.fake.cancel_script.extend([{"http_status": 503} for _ in range(svc.MAX_ATTEMPTS)])
    oid = world.order(("X", 2))
    [fo_id] = world.fos_of(oid)
    world.send()
    with world.hstore.handoff_transaction() as htx:
        svc.request_cancel(htx, fo_id, clock[0])
    for _ in range(svc.MAX_ATTEMPTS):
        assert len(world.send()["failed"]) == 1
        assert world.send()["failed"] == []  # not due again yet
        clock[0] += timedelta(minutes=11)
    assert world.send()["failed"] == []  # given up: no sixth attempt
    assert len(world.fake.cancels) == 0  # the outage answered before the body was kept
    # nothing was released while the 3PL may still ship it
    assert world.fo(fo_id)["status"] == "cancel_requested"
    assert stock(world.rt)[("X", "a")] == (10, 2)
    with world.rt.store.read() as conn:
        rows = conn.execute(select(t.outbox.c.name, t.outbox.c.data)).all()
    assert [d["step"] for n, d in rows if n == "fulfilment_order.handoff_failed"] == ["cancel"]


def test_callbacks_the_contract_refuses_are_refused_by_aoms_too(world: World) -> None:
    oid = world.order(("X", 1))
    [fo_id] = world.fos_of(oid)
    world.send()
    base = {"fulfilment_order_id": fo_id, "occurred_at": now_iso()}
    bad = [
        {**base, "event_id": "b1", "type": "rejected"},  # no reason
        {**base, "event_id": "b2", "type": "shipped"},  # no shipment
        {**base, "event_id": "b3", "type": "rejected", "reason": "lost"},  # unknown reason
        {**base, "event_id": "b4", "type": "accepted", "colour": "red"},  # unknown field
        {**base, "event_id": "b5", "type": "accepted", "occurred_at": "2026-11-02T10:00:00"},
    ]
    for message in bad:
        assert schema_errors("Callback", message) != [], message
        body = json.dumps(message).encode()
        answer = httpx.post(
            f"{world.aoms}/v1/3pl/a/callbacks", content=body, headers=sign(SECRET, body)
        )
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid_input"), message
        assert schema_errors("Problem", answer.json()) == []
    assert world.fo(fo_id)["status"] == "requested"
