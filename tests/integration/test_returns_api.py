"""Returns, refunds and exchanges through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aoms.adapters.db import schema as t
from aoms.adapters.db import setup as db_setup
from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app
from aoms.services.ports import RefundToPush
from tests.builders import network

SHOP = "shop.myshopify.com"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class RecordingPublisher:
    def __init__(self) -> None:
        self.pushed: list[RefundToPush] = []

    def publish_refund(self, refund: RefundToPush) -> str | None:
        self.pushed.append(refund)
        return f"shopify-refund-{refund.refund_id}"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.clock = lambda: NOW
    runtime.refund_publisher = RecordingPublisher()
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def on_hand(client: TestClient, sku: str, location: str) -> int:
    items = client.get("/v1/inventory", params={"sku": sku, "location_id": location}).json()
    return int(items["items"][0]["on_hand"]) if items["items"] else 0


def movements(rt: Runtime, reason: str) -> list[tuple[str, str, int, str | None]]:
    m = t.stock_movements.c
    with rt.store.read() as conn:
        rows = conn.execute(
            select(m.sku, m.location_id, m.on_hand_delta, m.reference)
            .where(m.reason == reason)
            .order_by(m.id)
        ).all()
    return [(r.sku, r.location_id, r.on_hand_delta, r.reference) for r in rows]


def event_names(rt: Runtime) -> list[str]:
    with rt.store.read() as conn:
        return list(conn.execute(select(t.outbox.c.name).order_by(t.outbox.c.id)).scalars())


def place(client: TestClient, external_id: str, lines: list[dict[str, Any]], **extra: Any) -> int:
    body = {
        "shop": SHOP,
        "external_id": external_id,
        "currency": "USD",
        "placed_at": (NOW - timedelta(days=10)).isoformat(),
        "shipping_address": {"country_code": "US", "latitude": 0.0, "longitude": 10.0},
        "lines": lines,
        **extra,
    }
    order = ok(client.post("/v1/orders", json=body), 201)["order"]
    return int(order["id"])


def test_refunding_two_cables_restocks_them_once_and_cameras_at_most_one(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("CAMERA", "a"): 3, ("CABLE", "a"): 10})
    order_id = place(
        client,
        "cam-1",
        [
            {"sku": "CAMERA", "quantity": 1, "unit_price": "300.00"},
            {"sku": "CABLE", "quantity": 2, "unit_price": "1.00"},
        ],
    )
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))
    before = on_hand(client, "CABLE", "a")
    body = {"lines": [{"line_no": 2, "quantity": 2, "restock_location_id": "a"}]}
    preview = ok(client.post(f"/v1/orders/{order_id}/refunds/preview", json=body))
    assert (preview["total"], preview["payments"]) == (
        "2.00",
        [{"payment_id": None, "method": "unknown", "amount": "2.00"}],
    )
    assert on_hand(client, "CABLE", "a") == before  # a preview changes nothing
    refund = ok(client.post(f"/v1/orders/{order_id}/refunds", json=body), 201)["refund"]
    assert (refund["total"], refund["items"]) == ("2.00", "2.00")
    assert [(p["method"], p["amount"]) for p in refund["payments"]] == [("unknown", "2.00")]
    assert on_hand(client, "CABLE", "a") == before + 2
    assert movements(runtime, "refund_restock") == [("CABLE", "a", 2, f"refund:{refund['id']}")]

    again = client.post(f"/v1/orders/{order_id}/refunds", json=body)
    assert again.status_code == 409
    assert again.json()["code"] == "return_quantity_exceeded"
    assert on_hand(client, "CABLE", "a") == before + 2
    assert len(movements(runtime, "refund_restock")) == 1

    cameras = client.post(
        f"/v1/orders/{order_id}/refunds", json={"lines": [{"line_no": 1, "quantity": 2}]}
    )
    assert cameras.status_code == 409
    assert "at most" in cameras.json()["detail"] or "1 of 1" in cameras.json()["detail"]
    refunds = ok(client.get(f"/v1/orders/{order_id}/refunds"))
    assert [r["total"] for r in refunds["refunds"]] == ["2.00"]
    # One payment of the order's total was assumed (302.00) and 2.00 of it refunded.
    assert [(p["captured"], p["refunded"], p["source"]) for p in refunds["payments"]] == [
        ("302.00", "2.00", "default")
    ]


def test_a_return_from_request_to_refund_and_restock(client: TestClient, runtime: Runtime) -> None:
    network(runtime.engine, {("TEE", "a"): 4, ("TEE", "b"): 0})
    ok(
        client.put(
            f"/v1/shops/{SHOP}/return-policy",
            json={"refund_shipping": True, "refund_timing": "inspection"},
        )
    )
    # 10.00 + 21% tax 2.10, shipping 5.00 + 21% tax 1.05 = 18.15, paid by card.
    order_id = place(
        client,
        "tee-1",
        [{"sku": "TEE", "quantity": 1, "unit_price": "10.00", "tax": "2.10"}],
        shipping="5.00",
        shipping_tax="1.05",
        total="18.15",
        payments=[{"method": "card", "amount": "18.15"}],
    )
    not_yet = client.post(
        "/v1/returns", json={"order_id": order_id, "items": [{"line_no": 1, "reason": "too_small"}]}
    )
    assert (not_yet.status_code, not_yet.json()["code"]) == (409, "not_returnable")
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))

    opened = ok(
        client.post(
            "/v1/returns",
            json={
                "order_id": order_id,
                "items": [{"line_no": 1, "quantity": 1, "reason": "too_small"}],
            },
        ),
        201,
    )
    rid = opened["id"]
    assert (opened["status"], opened["decision"]) == ("approved", "approve")
    twice = client.post(
        "/v1/returns", json={"order_id": order_id, "items": [{"line_no": 1, "reason": "too_small"}]}
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "return_quantity_exceeded")

    labelled = ok(client.post(f"/v1/returns/{rid}/label"))
    tracking = labelled["tracking_number"]
    assert labelled["status"] == "label_issued" and tracking.startswith("RT")
    label = client.get(f"/v1/returns/{rid}/label")
    assert label.text.startswith("^XA") and tracking in label.text
    bad = client.post(
        "/v1/returns/scans",
        json={
            "tracking_number": tracking[:-1] + "0" if tracking[-1] != "0" else tracking[:-1] + "1"
        },
    )
    assert bad.json()["code"] == "invalid_input"
    scanned = ok(client.post("/v1/returns/scans", json={"tracking_number": tracking}))
    assert (scanned["status"], scanned["refund_id"]) == ("in_transit", None)  # after inspection

    received = ok(client.post(f"/v1/returns/{rid}/receive", json={"location_id": "b"}))
    assert (received["status"], received["refund_id"]) == ("received", None)
    item = received["items"][0]["id"]
    inspected = ok(
        client.post(
            f"/v1/returns/{rid}/inspect",
            json={"dispositions": [{"item_id": item, "quantity": 1, "disposition": "restock"}]},
        )
    )
    assert inspected["status"] == "closed"
    refund = inspected["refund"]
    assert (refund["items"], refund["shipping"], refund["shipping_tax"]) == (
        "12.10",
        "5.00",
        "1.05",
    )
    assert refund["total"] == "18.15"
    assert [(p["method"], p["amount"]) for p in refund["payments"]] == [("card", "18.15")]
    assert on_hand(client, "TEE", "b") == 1
    assert movements(runtime, "return_restock") == [("TEE", "b", 1, f"return:{rid}")]
    again = client.post(
        f"/v1/returns/{rid}/inspect",
        json={"dispositions": [{"item_id": item, "quantity": 1, "disposition": "restock"}]},
    )
    assert again.status_code == 409
    assert on_hand(client, "TEE", "b") == 1
    assert (client.post(f"/v1/returns/{rid}/refund").json()["code"]) == "already_refunded"

    names = event_names(runtime)
    for name in (
        "return.requested",
        "return.decided",
        "return.label_issued",
        "return.in_transit",
        "return.received",
        "stock.adjusted",
        "return.inspected",
        "refund.issued",
        "return.closed",
    ):
        assert name in names
    publisher = runtime.refund_publisher
    assert isinstance(publisher, RecordingPublisher)
    assert [(p.amount, p.shipping, p.note) for p in publisher.pushed] == [
        ("18.15", "6.05", f"aoms-refund:{refund['id']}")
    ]
    stored = ok(client.get(f"/v1/orders/{order_id}/refunds"))["refunds"][0]
    assert stored["external_id"] == f"shopify-refund-{refund['id']}"


def test_without_shipping_the_return_refunds_12_10_on_receipt(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("TEE", "a"): 4})
    order_id = place(
        client,
        "tee-2",
        [{"sku": "TEE", "quantity": 1, "unit_price": "10.00", "tax": "2.10"}],
        shipping="5.00",
        shipping_tax="1.05",
    )
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))
    rid = ok(
        client.post(
            "/v1/returns",
            json={"order_id": order_id, "items": [{"line_no": 1, "reason": "changed_mind"}]},
        ),
        201,
    )["id"]
    received = ok(client.post(f"/v1/returns/{rid}/receive", json={"location_id": "a"}))
    assert received["refund"]["total"] == "12.10"  # the default rule: refund on receipt
    assert received["status"] == "received"


def test_the_policy_rejects_final_sale_and_reviews_damage_without_photos(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("SALE", "a"): 4, ("MUG", "a"): 4})
    with runtime.engine.begin() as conn:
        db_setup.upsert_product(conn, "SALE", "Sale tee", 200, tags=["final-sale"])
    bad = client.put(f"/v1/shops/{SHOP}/return-policy", json={"refund_timing": "whenever"})
    assert (bad.status_code, bad.json()["field"]) == (422, "refund_timing")
    unknown = client.put(f"/v1/shops/{SHOP}/return-policy", json={"windw_days": 3})
    assert (unknown.status_code, unknown.json()["field"]) == (422, "windw_days")
    ok(
        client.put(
            f"/v1/shops/{SHOP}/return-policy",
            json={"restocking_fee_percent": "10", "free_return_tags": ["vip"]},
        )
    )
    order_id = place(
        client,
        "mix-1",
        [
            {"sku": "SALE", "quantity": 1, "unit_price": "20.00"},
            {"sku": "MUG", "quantity": 2, "unit_price": "15.00"},
        ],
    )
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))
    rejected = ok(
        client.post(
            "/v1/returns",
            json={"order_id": order_id, "items": [{"line_no": 1, "reason": "changed_mind"}]},
        ),
        201,
    )
    assert rejected["status"] == "rejected"
    assert rejected["decision_reasons"] == ["SALE is final sale (tag final-sale)"]

    review = ok(
        client.post(
            "/v1/returns",
            json={"order_id": order_id, "items": [{"line_no": 2, "reason": "damaged"}]},
        ),
        201,
    )
    assert review["status"] == "review"
    approved = ok(
        client.post(
            f"/v1/returns/{review['id']}/review",
            json={"decision": "approve", "note": "photo by e-mail"},
        )
    )
    assert approved["status"] == "approved"
    # Damaged is the merchant's fault: no restocking fee. 15.00 back.
    got = ok(client.post(f"/v1/returns/{review['id']}/receive", json={"location_id": "a"}))
    assert (got["refund"]["total"], got["refund"]["fees"]) == ("15.00", "0.00")

    # Changed mind: 10% restocking fee of 15.00 = 1.50 as a visible line; 13.50 back.
    plain = ok(
        client.post(
            "/v1/returns",
            json={"order_id": order_id, "items": [{"line_no": 2, "reason": "changed_mind"}]},
        ),
        201,
    )
    got = ok(client.post(f"/v1/returns/{plain['id']}/receive", json={"location_id": "a"}))
    assert got["refund"]["total"] == "13.50"
    assert [(f["kind"], f["amount"]) for f in got["refund"]["fee_lines"]] == [
        ("restocking", "1.50")
    ]


def test_an_exchange_charges_or_refunds_only_the_difference(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("SHIRT-M", "a"): 5, ("SHIRT-L", "a"): 5, ("SHIRT-S", "a"): 5})
    order_id = place(
        client,
        "shirt-1",
        [
            {"sku": "SHIRT-M", "quantity": 2, "unit_price": "40.00", "tax": "16.80"},
        ],
    )
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))
    # Dearer: 55.00 + 11.55 = 66.55 for a returned 40.00 + 8.40 = 48.40 -> 18.15 is charged.
    dear = ok(
        client.post(
            "/v1/returns",
            json={
                "order_id": order_id,
                "items": [{"line_no": 1, "reason": "too_small"}],
                "exchange": {"sku": "SHIRT-L", "unit_price": "55.00", "tax": "11.55"},
            },
        ),
        201,
    )
    assert dear["exchange_order_id"] is None  # not instant: it ships when the return arrives
    got = ok(client.post(f"/v1/returns/{dear['id']}/receive", json={"location_id": "a"}))
    assert got["refund"]["total"] == "0.00"
    assert got["refund"]["exchange"] == "48.40"
    assert got["exchange"]["charge_due"] == "18.15"
    replacement = ok(client.get(f"/v1/orders/{got['exchange_order_id']}"))
    assert replacement["status"] == "routed"
    # Cheaper: 30.00 + 6.30 = 36.30 -> 48.40 − 36.30 = 12.10 is refunded.
    cheap = ok(
        client.post(
            "/v1/returns",
            json={
                "order_id": order_id,
                "items": [{"line_no": 1, "reason": "too_big"}],
                "exchange": {"sku": "SHIRT-S", "unit_price": "30.00", "tax": "6.30"},
            },
        ),
        201,
    )
    got = ok(client.post(f"/v1/returns/{cheap['id']}/receive", json={"location_id": "a"}))
    assert (got["refund"]["total"], got["refund"]["exchange"]) == ("12.10", "36.30")
    assert "charge_due" not in got["exchange"]
    events = event_names(runtime)
    assert events.count("exchange.created") == 2
    assert events.count("exchange.charge_due") == 1


def test_an_instant_exchange_ships_first_and_is_charged_when_the_return_never_comes(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("SHIRT-M", "a"): 5, ("SHIRT-L", "a"): 5})
    order_id = place(
        client,
        "shirt-2",
        [
            {"sku": "SHIRT-M", "quantity": 1, "unit_price": "40.00", "tax": "8.40"},
        ],
    )
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))
    opened = ok(
        client.post(
            "/v1/returns",
            json={
                "order_id": order_id,
                "items": [{"line_no": 1, "reason": "too_small"}],
                "exchange": {
                    "sku": "SHIRT-L",
                    "unit_price": "40.00",
                    "tax": "8.40",
                    "instant": True,
                },
            },
        ),
        201,
    )
    assert opened["exchange_status"] == "open"
    reserved = client.get("/v1/inventory", params={"sku": "SHIRT-L"}).json()["items"][0]
    assert reserved["reserved"] == 1  # the replacement's stock is held before the return
    assert ok(client.post("/v1/returns/exchanges/check-deadlines"))["overdue"] == []
    runtime.clock = lambda: NOW + timedelta(days=15)  # the default deadline is 14 days
    assert ok(client.post("/v1/returns/exchanges/check-deadlines"))["overdue"] == [opened["id"]]
    late = ok(client.get(f"/v1/returns/{opened['id']}"))
    assert (late["exchange_status"], late["exchange"]["charge_due"]) == (
        "overdue",
        "48.40",
    )
    assert "exchange.return_overdue" in event_names(runtime)
    assert ok(client.post("/v1/returns/exchanges/check-deadlines"))["overdue"] == []
    # The parcel arrives after all: the replacement was made due in full, so the returned
    # shirt is refunded in full (48.40), not kept a second time.
    got = ok(client.post(f"/v1/returns/{opened['id']}/receive", json={"location_id": "a"}))
    assert (got["refund"]["total"], got["refund"]["exchange"]) == ("48.40", "0.00")


def test_a_label_scan_refunds_at_once_when_the_store_says_so(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("CAP", "a"): 4})
    ok(
        client.put(
            f"/v1/shops/{SHOP}/return-policy",
            json={"refund_timing": "label_scan", "markets": {"US": {"window_days": 60}}},
        )
    )
    order_id = place(
        client,
        "cap-1",
        [{"sku": "CAP", "quantity": 3, "unit_price": "3.33"}],
        order_discount="1.00",
    )
    ok(
        client.post(
            f"/v1/orders/{order_id}/delivered",
            json={"delivered_at": (NOW - timedelta(days=45)).isoformat()},
        )
    )
    # 45 days after delivery: inside the US market's 60-day window (the store's is 30).
    opened = ok(
        client.post(
            "/v1/returns",
            json={
                "order_id": order_id,
                "items": [{"line_no": 1, "quantity": 1, "reason": "too_small"}],
            },
        ),
        201,
    )
    assert opened["status"] == "approved"
    tracking = ok(client.post(f"/v1/returns/{opened['id']}/label"))["tracking_number"]
    scanned = ok(client.post("/v1/returns/scans", json={"tracking_number": tracking}))
    # 3 × 3.33 − 1.00 = 8.99 for the line; one unit of three: 899 × 1/3 = 299.67 -> 3.00.
    assert (scanned["status"], scanned["refund"]["total"]) == ("in_transit", "3.00")


def test_payments_are_refunded_in_the_policys_order_and_store_credit_gets_its_bonus(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("BOOT", "a"): 5})
    ok(
        client.put(
            f"/v1/shops/{SHOP}/return-policy",
            json={"payment_order": ["gift_card"], "store_credit_bonus_percent": "10"},
        )
    )
    order_id = place(
        client,
        "boot-1",
        [{"sku": "BOOT", "quantity": 2, "unit_price": "50.00"}],
        payments=[
            {"method": "card", "amount": "70.00"},
            {"method": "gift_card", "amount": "30.00"},
        ],
    )
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))  # only shipped units refund
    first = ok(
        client.post(
            f"/v1/orders/{order_id}/refunds", json={"lines": [{"line_no": 1, "quantity": 1}]}
        ),
        201,
    )["refund"]
    assert [(p["method"], p["amount"]) for p in first["payments"]] == [
        ("card", "20.00"),
        ("gift_card", "30.00"),
    ]
    second = ok(
        client.post(
            f"/v1/orders/{order_id}/refunds",
            json={"lines": [{"line_no": 1, "quantity": 1}], "refund_to": "store_credit"},
        ),
        201,
    )["refund"]
    assert (second["destination"], second["total"], second["store_credit_bonus"]) == (
        "store_credit",
        "50.00",
        "5.00",
    )
    payments = ok(client.get(f"/v1/orders/{order_id}/refunds"))["payments"]
    assert [(p["method"], p["captured"], p["refunded"]) for p in payments] == [
        ("card", "70.00", "70.00"),
        ("gift_card", "30.00", "30.00"),
    ]
    with runtime.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.refunds)).scalar_one() == 2


def test_the_deadline_job_on_the_command_line_flags_an_overdue_instant_exchange(
    client: TestClient, runtime: Runtime, db_url: str
) -> None:
    from typer.testing import CliRunner

    from aoms.entrypoints.cli import app

    network(runtime.engine, {("SHIRT-M", "a"): 5, ("SHIRT-L", "a"): 5})
    runtime.clock = lambda: datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # long before today
    order_id = place(
        client,
        "shirt-cli",
        [
            {"sku": "SHIRT-M", "quantity": 1, "unit_price": "40.00", "tax": "8.40"},
        ],
    )
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))
    opened = ok(
        client.post(
            "/v1/returns",
            json={
                "order_id": order_id,
                "items": [{"line_no": 1, "reason": "too_small"}],
                "exchange": {
                    "sku": "SHIRT-L",
                    "unit_price": "40.00",
                    "tax": "8.40",
                    "instant": True,
                },
            },
        ),
        201,
    )
    result = CliRunner().invoke(app, ["returns", "check-deadlines", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"overdue": [opened["id"]]}
    assert ok(client.get(f"/v1/returns/{opened['id']}"))["exchange_status"] == "overdue"


class FailingPublisher:
    def publish_refund(self, refund: RefundToPush) -> str | None:
        raise RuntimeError("Shopify is down")


def test_a_channel_that_fails_to_take_the_refund_does_not_undo_it(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("MUG", "a"): 4})
    runtime.refund_publisher = FailingPublisher()
    order_id = place(client, "mug-9", [{"sku": "MUG", "quantity": 1, "unit_price": "15.00"}])
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))
    made = client.post(
        f"/v1/orders/{order_id}/refunds", json={"lines": [{"line_no": 1, "quantity": 1}]}
    )
    assert made.status_code == 201, made.text
    stored = ok(client.get(f"/v1/orders/{order_id}/refunds"))["refunds"]
    assert [(r["total"], r["external_id"]) for r in stored] == [("15.00", None)]


def test_a_delivered_order_ships_what_it_held_so_a_restock_makes_no_stock_from_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    # 4 TEE at A; an order of 1 reserves one (A: 4 on hand, 1 reserved). The channel says it
    # was delivered (fulfilled outside any warehouse aoms handed it to): the unit left, so A
    # has 3 on hand and none reserved, and its fulfilment order is shipped. Returned and
    # restocked, A has 4 again: the unit that came back, not a second one.
    network(runtime.engine, {("TEE", "a"): 4})
    order_id = place(client, "tee-2", [{"sku": "TEE", "quantity": 1, "unit_price": "10.00"}])
    level = ok(client.get("/v1/inventory", params={"sku": "TEE", "location_id": "a"}))["items"][0]
    assert (level["on_hand"], level["reserved"]) == (4, 1)
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))
    level = ok(client.get("/v1/inventory", params={"sku": "TEE", "location_id": "a"}))["items"][0]
    assert (level["on_hand"], level["reserved"]) == (3, 0)
    order = ok(client.get(f"/v1/orders/{order_id}"))
    assert [f["status"] for f in order["fulfilment_orders"]] == ["shipped"]
    assert movements(runtime, "shipped") == [("TEE", "a", -1, f"order:{order_id}")]
    body = {"lines": [{"line_no": 1, "quantity": 1, "restock_location_id": "a"}]}
    ok(client.post(f"/v1/orders/{order_id}/refunds", json=body), 201)
    level = ok(client.get("/v1/inventory", params={"sku": "TEE", "location_id": "a"}))["items"][0]
    assert (level["on_hand"], level["reserved"]) == (4, 0)
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))  # told twice: nothing more
    assert len(movements(runtime, "shipped")) == 1


def test_units_that_have_not_shipped_are_not_refunded_here(
    client: TestClient, runtime: Runtime
) -> None:
    # An order of 2 not yet shipped: no unit has left, so none can be refunded (an edit or a
    # cancellation takes unshipped units off the order and releases them).
    network(runtime.engine, {("MUG", "a"): 4})
    order_id = place(client, "mug-10", [{"sku": "MUG", "quantity": 2, "unit_price": "15.00"}])
    refused = client.post(
        f"/v1/orders/{order_id}/refunds", json={"lines": [{"line_no": 1, "quantity": 1}]}
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "return_quantity_exceeded")
    assert "(0 shipped)" in refused.json()["detail"]
