"""The dashboard's review queue and returns pages over HTTP, on SQLite and PostgreSQL: roles and
CSRF on the hold actions, the same use cases as the API, and numbers worked out by hand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.adapters.db import dashboard
from aoms.adapters.db.users import SqlUserStore
from aoms.bootstrap import Runtime
from aoms.domain.users import Role
from aoms.entrypoints.api.app import create_app
from aoms.entrypoints.web import review
from tests.builders import network

SHOP = "shop.myshopify.com"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PASSWORDS = {"vera": "viewer-password-1", "otto": "operator-password-1"}


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    users = SqlUserStore(runtime.store)
    users.add_user("vera", PASSWORDS["vera"], Role.VIEWER, NOW)
    users.add_user("otto", PASSWORDS["otto"], Role.OPERATOR, NOW)
    runtime.clock = lambda: NOW
    with TestClient(create_app(runtime, migrate_on_start=False), follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, user: str) -> str:
    """Sign in; returns the session's CSRF token (as the queue's forms carry it)."""
    client.cookies.clear()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    done = client.post(
        "/login",
        data={"username": user, "password": PASSWORDS[user], "csrf_token": token.group(1)},
    )
    assert done.status_code == 303
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/holds").text)
    assert csrf
    return csrf.group(1)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def place(client: TestClient, external_id: str, lines: list[dict[str, Any]], **extra: Any) -> int:
    body = {
        "shop": SHOP,
        "external_id": external_id,
        "name": f"#{external_id}",
        "currency": "USD",
        "financial_status": "paid",
        "placed_at": (NOW - timedelta(days=10)).isoformat(),
        "shipping_address": {"country_code": "US", "latitude": 0.0, "longitude": 10.0},
        "lines": lines,
        **extra,
    }
    return int(ok(client.post("/v1/orders", json=body), 201)["order"]["id"])


def hold(client: TestClient, order_id: int, kind: str, reason: str) -> int:
    body = {"kind": kind, "reason": reason, "actor": "ann"}
    return int(ok(client.post(f"/v1/orders/{order_id}/holds", json=body), 201)["id"])


def api_on_hold(client: TestClient) -> int:
    """Orders on hold by the API: the distinct orders of the open holds, each confirmed by
    its lifecycle state."""
    orders = {h["order_id"] for h in ok(client.get("/v1/holds?limit=500"))["items"]}
    states = [ok(client.get(f"/v1/orders/{o}/lifecycle"))["state"] for o in orders]
    return sum(1 for s in states if s == "on_hold")


def kpi(client: TestClient, name: str) -> int:
    found = re.search(rf'data-kpi="{name}"><a href="/holds">(\d+)</a>', client.get("/").text)
    assert found, name
    return int(found.group(1))


def three_orders(client: TestClient, runtime: Runtime) -> tuple[int, int, int]:
    network(runtime.engine, {("TEE", "a"): 20})
    line = [{"sku": "TEE", "quantity": 1, "unit_price": "10.00"}]
    return place(client, "1001", line), place(client, "1002", line), place(client, "1003", line)


def test_a_viewer_sees_the_queue_but_may_not_release_a_hold_or_cancel(
    client: TestClient, runtime: Runtime
) -> None:
    a, _, _ = three_orders(client, runtime)
    hid = hold(client, a, "manual_review", "the customer asked to check the size")
    csrf = sign_in(client, "vera")
    queue = client.get("/holds")
    assert queue.status_code == 200
    assert "the customer asked to check the size" in queue.text
    assert f'href="/orders/{a}">#1001</a>' in queue.text
    assert f'action="/holds/{hid}/release"' not in queue.text  # a viewer is not offered it
    refused = client.post(f"/holds/{hid}/release", data={"csrf_token": csrf, "note": "x"})
    assert refused.status_code == 403 and "may not release a hold" in refused.text
    refused = client.post(f"/orders/{a}/review/cancel", data={"csrf_token": csrf})
    assert refused.status_code == 403 and "may not cancel an order" in refused.text
    got = ok(client.get(f"/v1/holds/{hid}"))
    assert (got["status"], got["resolved_by"]) == ("open", None)
    assert ok(client.get(f"/v1/orders/{a}"))["status"] == "routed"
    order_page = client.get(f"/orders/{a}")
    assert 'data-testid="lifecycle-state">on hold<' in order_page.text
    assert "the customer asked to check the size" in order_page.text


def test_an_operator_releases_a_hold_with_a_note_and_the_order_goes_on(
    client: TestClient, runtime: Runtime
) -> None:
    a, _, _ = three_orders(client, runtime)
    hid = hold(client, a, "manual_review", "check the size")
    csrf = sign_in(client, "otto")
    assert f'action="/holds/{hid}/release"' in client.get("/holds").text
    forged = client.post(f"/holds/{hid}/release", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert ok(client.get(f"/v1/holds/{hid}"))["status"] == "open"
    done = client.post(
        f"/holds/{hid}/release",
        data={"csrf_token": csrf, "note": "size confirmed by phone", "back": "/holds?kind=x"},
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith("/holds?kind=x&notice=Released")
    got = ok(client.get(f"/v1/holds/{hid}"))
    assert (got["status"], got["resolved_by"], got["note"]) == (
        "released",
        "dashboard:otto",
        "size confirmed by phone",
    )
    assert ok(client.get(f"/v1/orders/{a}/lifecycle"))["state"] == "ready_for_fulfilment"
    events = [e["event"] for e in ok(client.get(f"/v1/orders/{a}/history"))["items"]]
    assert "order.released_for_fulfilment" in events
    again = client.post(f"/holds/{hid}/release", data={"csrf_token": csrf})
    assert "error=" in again.headers["location"]  # released already: said so, nothing changed
    assert "released+already" in again.headers["location"]
    elsewhere = client.post(
        f"/holds/{hid}/release", data={"csrf_token": csrf, "back": "https://evil.example/"}
    )
    assert elsewhere.headers["location"].startswith("/holds?")


def test_an_operator_cancels_an_order_from_the_queue_and_its_holds_close(
    client: TestClient, runtime: Runtime
) -> None:
    a, _, _ = three_orders(client, runtime)
    h1 = hold(client, a, "manual_review", "check")
    h2 = hold(client, a, "merchant_rule", "tagged vip")
    csrf = sign_in(client, "otto")
    done = client.post(
        f"/orders/{a}/review/cancel", data={"csrf_token": csrf, "note": "fraud", "back": "/holds"}
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/holds?notice=")
    life = ok(client.get(f"/v1/orders/{a}/lifecycle"))
    assert life["state"] == "cancelled"
    assert [(h["id"], h["status"], h["resolved_by"]) for h in life["holds"]] == [
        (h1, "cancelled", "dashboard:otto"),
        (h2, "cancelled", "dashboard:otto"),
    ]
    assert ok(client.get("/v1/inventory?sku=TEE&location_id=a"))["items"][0]["reserved"] == 2


def test_the_order_pages_cancel_closes_the_orders_holds_as_the_api_does(
    client: TestClient, runtime: Runtime
) -> None:
    a, _, _ = three_orders(client, runtime)
    hid = hold(client, a, "manual_review", "check")
    csrf = sign_in(client, "otto")
    assert client.post(f"/orders/{a}/cancel", data={"csrf_token": csrf}).status_code == 303
    assert ok(client.get(f"/v1/holds/{hid}"))["status"] == "cancelled"
    assert dashboard_on_hold(runtime) == 0


def dashboard_on_hold(runtime: Runtime) -> int:
    with runtime.store.read() as conn:
        return dashboard.on_hold(conn)


def test_the_overview_counts_orders_on_hold_as_the_api_does(
    client: TestClient, runtime: Runtime
) -> None:
    a, b, c = three_orders(client, runtime)
    a1 = hold(client, a, "manual_review", "check")
    hold(client, a, "high_fraud_risk", "by hand")
    b1 = hold(client, b, "manual_review", "check")
    sign_in(client, "vera")
    # a has two holds and b one: two orders on hold, c none.
    assert kpi(client, "on_hold") == api_on_hold(client) == 2
    ok(client.post(f"/v1/holds/{a1}/release", json={"actor": "ann"}))
    assert kpi(client, "on_hold") == api_on_hold(client) == 2  # a still has one open
    ok(client.post(f"/v1/holds/{b1}/release", json={"actor": "ann"}))
    assert kpi(client, "on_hold") == api_on_hold(client) == 1
    ok(client.post(f"/v1/orders/{a}/review/cancel", json={"actor": "ann"}))
    assert kpi(client, "on_hold") == api_on_hold(client) == 0
    assert c  # never held


def test_the_queue_filters_by_kind_and_status_and_pages_by_keyset(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = three_orders(client, runtime)
    ids = [
        hold(client, a, "manual_review", "r-a"),
        hold(client, b, "manual_review", "r-b"),
        hold(client, c, "manual_review", "r-c"),
        hold(client, a, "merchant_rule", "r-a2"),
    ]
    ok(client.post(f"/v1/holds/{ids[1]}/release", json={"actor": "ann"}))
    sign_in(client, "vera")
    monkeypatch.setattr(review, "PAGE", 2)

    def shown(url: str) -> tuple[list[int], str | None]:
        text = client.get(url).text
        more = re.search(r'rel="next" href="([^"]+)"', text)
        return [int(x) for x in re.findall(r'data-hold="(\d+)"', text)], (
            more.group(1).replace("&amp;", "&") if more else None
        )

    first, nxt = shown("/holds")  # open ones, oldest first: 1, 3, 4 → two a page
    assert first == [ids[0], ids[2]] and nxt == f"/holds?after={ids[2]}"
    rest, end = shown(nxt)
    assert rest == [ids[3]] and end is None
    assert shown("/holds?kind=manual_review")[0] == [ids[0], ids[2]]
    assert shown("/holds?status=released")[0] == [ids[1]]
    everything, more = shown("/holds?status=any")
    assert everything == ids[:2] and more == f"/holds?status=any&after={ids[1]}"
    assert client.get("/holds?kind=nonsense").status_code == 422
    assert client.get("/holds?after=1;drop").status_code == 422


def test_a_return_page_shows_its_state_label_dispositions_and_refund_as_the_api_does(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("TEE", "a"): 20})
    # 2 × 10.00 with 4.20 tax, shipping 5.00: 29.20, paid 10.00 by gift card, 19.20 by card.
    order_id = place(
        client,
        "2001",
        [{"sku": "TEE", "quantity": 2, "unit_price": "10.00", "tax": "4.20"}],
        shipping="5.00",
        total="29.20",
        payments=[
            {"method": "card", "amount": "19.20"},
            {"method": "gift_card", "amount": "10.00"},
        ],
    )
    ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))
    body = {"order_id": order_id, "items": [{"line_no": 1, "quantity": 1, "reason": "too_small"}]}
    rid = ok(client.post("/v1/returns", json=body), 201)["id"]
    tracking = ok(client.post(f"/v1/returns/{rid}/label"))["tracking_number"]
    ok(client.post("/v1/returns/scans", json={"tracking_number": tracking}))
    received = ok(client.post(f"/v1/returns/{rid}/receive", json={"location_id": "a"}))
    item = received["items"][0]["id"]
    disposition = {"item_id": item, "quantity": 1, "disposition": "restock"}
    api = ok(client.post(f"/v1/returns/{rid}/inspect", json={"dispositions": [disposition]}))
    # One unit of two: half the goods (10.00) and half the tax (2.10) = 12.10, no shipping;
    # the gift card is refunded first (10.00), the card the rest (2.10).
    refund = api["refund"]
    assert (refund["items"], refund["shipping"], refund["total"]) == ("12.10", "0.00", "12.10")
    assert sorted((p["method"], p["amount"]) for p in refund["payments"]) == [
        ("card", "2.10"),
        ("gift_card", "10.00"),
    ]
    sign_in(client, "vera")
    text = client.get(f"/returns/{rid}").text
    assert '<span class="status r-closed">closed</span>' in text
    assert f'data-testid="tracking">{tracking}<' in text
    assert 'data-testid="refund-total">12.10 USD<' in text
    assert 'data-testid="refund-items">12.10 USD<' in text
    assert 'data-testid="refund-shipping">0.00 USD<' in text
    assert re.findall(r'data-testid="line-total">([^<]+)<', text) == ["12.10 USD"]
    amounts = re.findall(r'data-testid="payment-amount">([^<]+)<', text)
    assert amounts == [f"{p['amount']} USD" for p in refund["payments"]]
    assert '<td>TEE</td><td class="num">1</td><td>restock</td><td>a</td>' in text
    assert "too small" in text
    assert "decision approve, within the window and policy" in text
    assert f"carrier aoms-return, tracking {tracking}" in text and "1 × restock" in text
    history = re.findall(r"<strong>(return\.[a-z_]+)</strong>", text)
    assert history[0] == "return.requested" and history[-1] == "return.closed"
    assert "return.in_transit" in history and "return.received" in history
    assert client.get("/returns/999999").status_code == 404


def test_the_returns_list_filters_by_state_and_pages_by_keyset(
    client: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("TEE", "a"): 20})
    rids = []
    for n in range(3):
        order_id = place(
            client, f"30{n}", [{"sku": "TEE", "quantity": n + 1, "unit_price": "10.00"}]
        )
        ok(client.post(f"/v1/orders/{order_id}/delivered", json={}))
        items = [{"line_no": 1, "quantity": n + 1, "reason": "too_small"}]
        rids.append(
            ok(client.post("/v1/returns", json={"order_id": order_id, "items": items}), 201)["id"]
        )
    ok(client.post(f"/v1/returns/{rids[1]}/cancel"))
    with runtime.store.read() as conn:
        page, nxt = dashboard.return_list(conn, limit=2)
        assert [(r["id"], r["units"], r["status"]) for r in page] == [
            (rids[2], 3, "approved"),
            (rids[1], 2, "cancelled"),
        ]
        assert nxt == rids[1]
        rest, end = dashboard.return_list(conn, before=nxt, limit=2)
        assert [r["id"] for r in rest] == [rids[0]] and end is None
        assert [r["id"] for r in dashboard.return_list(conn, status="cancelled")[0]] == [rids[1]]
    sign_in(client, "vera")
    text = client.get("/returns?status=approved").text
    assert re.findall(r'href="/returns/(\d+)"', text) == [str(rids[2]), str(rids[0])]
    assert client.get("/returns?status=lost").status_code == 422
