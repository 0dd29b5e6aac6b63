"""The dashboard over its HTTP interface, on SQLite and PostgreSQL: sign-in, roles enforced on
the server, CSRF, and the numbers its queries show (worked out by hand)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from aoms.adapters.db import dashboard, queries
from aoms.adapters.db.users import SqlUserStore
from aoms.bootstrap import Runtime
from aoms.domain.errors import Conflict, InvalidInput
from aoms.domain.users import Role
from aoms.entrypoints.api.app import create_app
from aoms.services import orders
from tests.builders import T0, network, order

PASSWORDS = {"vera": "viewer-password-1", "otto": "operator-password-1"}


@pytest.fixture
def site(runtime: Runtime) -> Iterator[TestClient]:
    users = SqlUserStore(runtime.store)
    users.add_user("vera", PASSWORDS["vera"], Role.VIEWER, T0)
    users.add_user("otto", PASSWORDS["otto"], Role.OPERATOR, T0)
    runtime.clock = lambda: T0 + timedelta(days=2, hours=1)
    with TestClient(create_app(runtime, migrate_on_start=False), follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, user: str) -> str:
    """Sign in; returns the session's CSRF token (as every page's forms carry it)."""
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    done = client.post(
        "/login",
        data={
            "username": user,
            "password": PASSWORDS[user],
            "csrf_token": token.group(1),
            "next": "/stock",
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/stock"
    page = client.get("/stock")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    return csrf.group(1)


def place(runtime: Runtime, external_id: str, *lines: tuple[str, int], day: int) -> int:
    o = dataclasses.replace(
        order(*lines, external_id=external_id),
        placed_at=T0 + timedelta(days=day, minutes=int(external_id)),
    )
    with runtime.store.transaction() as tx:
        got = orders.receive_order(tx, o, geocode=runtime.geocode, now=o.placed_at)
    return got.order_id


def on_hand(runtime: Runtime, sku: str, location: str) -> int:
    with runtime.store.read() as conn:
        level = queries.stock_level(conn, sku, location)
    assert level is not None
    return int(level["on_hand"])


def test_every_page_needs_a_signed_in_user(site: TestClient) -> None:
    for path in ("/", "/orders", "/orders/1", "/stock", "/lab"):
        answer = site.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=")
    assert site.get("/orders", headers={"HX-Request": "true"}).headers["HX-Redirect"]


def test_a_session_cookie_is_http_only_same_site_and_secure_over_https(runtime: Runtime) -> None:
    SqlUserStore(runtime.store).add_user("vera", PASSWORDS["vera"], Role.VIEWER, T0)
    app = create_app(runtime, migrate_on_start=False)
    with TestClient(app, base_url="https://dash.example", follow_redirects=False) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
        assert token
        done = c.post(
            "/login",
            data={"username": "vera", "password": PASSWORDS["vera"], "csrf_token": token.group(1)},
        )
    cookie = next(
        v
        for k, v in done.headers.multi_items()
        if k == "set-cookie" and v.startswith("aoms_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie


def test_a_sign_in_without_its_form_token_or_with_a_wrong_password_opens_no_session(
    site: TestClient,
) -> None:
    no_token = site.post("/login", data={"username": "vera", "password": PASSWORDS["vera"]})
    assert no_token.status_code == 303 and no_token.headers["location"].startswith("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', site.get("/login").text)
    assert token
    wrong = site.post(
        "/login",
        data={"username": "vera", "password": "wrong-password-1", "csrf_token": token.group(1)},
    )
    assert wrong.status_code == 401
    assert site.get("/").status_code == 303


def test_sign_in_goes_on_only_to_a_path_on_this_site(site: TestClient) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', site.get("/login").text)
    assert token
    done = site.post(
        "/login",
        data={
            "username": "vera",
            "password": PASSWORDS["vera"],
            "csrf_token": token.group(1),
            "next": "//evil.example/",
        },
    )
    assert done.headers["location"] == "/"


def test_a_viewer_reads_every_page_but_may_not_adjust_stock_or_route(
    site: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    order_id = place(runtime, "1", ("X", 9), day=0)  # 5 reserved, 4 backordered
    csrf = sign_in(site, "vera")
    for path in ("/", "/orders", f"/orders/{order_id}", "/stock", "/lab"):
        assert site.get(path).status_code == 200, path
    refused = site.post(
        "/stock/adjust", data={"sku": "X", "location_id": "a", "delta": "4", "csrf_token": csrf}
    )
    assert refused.status_code == 403
    assert "may not adjust stock" in refused.text
    assert on_hand(runtime, "X", "a") == 5
    refused = site.post(f"/orders/{order_id}/route", data={"csrf_token": csrf})
    assert refused.status_code == 403
    with runtime.store.read() as conn:
        assert len(queries.order_detail(conn, order_id)["routing"]) == 1


def test_an_operator_adds_stock_and_the_waiting_order_is_routed(
    site: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    order_id = place(runtime, "1", ("X", 9), day=0)
    csrf = sign_in(site, "otto")
    done = site.post(
        "/stock/adjust",
        data={
            "sku": "X",
            "location_id": "a",
            "delta": "4",
            "reason": "receipt",
            "csrf_token": csrf,
            "idempotency_key": "k-1",
        },
    )
    assert done.status_code == 303
    assert "1+waiting+orders+routed" in done.headers["location"]
    assert on_hand(runtime, "X", "a") == 9
    again = site.post(
        "/stock/adjust",
        data={
            "sku": "X",
            "location_id": "a",
            "delta": "4",
            "csrf_token": csrf,
            "idempotency_key": "k-1",
        },
    )
    assert "applied+before" in again.headers["location"]  # a resent form counts once
    assert on_hand(runtime, "X", "a") == 9
    with runtime.store.read() as conn:
        assert queries.order_detail(conn, order_id)["status"] == "routed"


def test_an_action_without_the_sessions_csrf_token_is_refused(
    site: TestClient, runtime: Runtime
) -> None:
    network(runtime.engine, {("X", "a"): 5})
    sign_in(site, "otto")
    for token in (None, "forged-token"):
        data = {"sku": "X", "location_id": "a", "delta": "4"}
        answer = site.post("/stock/adjust", data=data | ({"csrf_token": token} if token else {}))
        assert answer.status_code == 403
    assert on_hand(runtime, "X", "a") == 5


def test_signing_out_or_an_expired_session_needs_a_new_sign_in(
    site: TestClient, runtime: Runtime
) -> None:
    csrf = sign_in(site, "vera")
    assert site.get("/").status_code == 200
    clock = runtime.clock
    runtime.clock = lambda: clock() + timedelta(hours=13)
    assert site.get("/").status_code == 303
    runtime.clock = clock
    assert site.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert site.get("/").status_code == 303


def test_the_overview_counts_days_splits_and_cost_per_order(runtime: Runtime) -> None:
    # a at 50 km, b at 80 km: one 500 g unit costs 4.00 shipping + 1.50 handling = 5.50.
    network(runtime.engine, {("X", "a"): 5, ("Y", "b"): 5})
    place(runtime, "1", ("X", 1), day=0)  # routed from a: 5.50
    place(runtime, "2", ("X", 1), ("Y", 1), day=1)  # split a + b: 11.00
    place(runtime, "3", ("Z", 1), day=2)  # nothing stocks Z: backordered
    cancelled = place(runtime, "4", ("X", 1), day=2)
    with runtime.store.transaction() as tx:
        orders.cancel_order(tx, cancelled, now=T0 + timedelta(days=2, hours=1))
    with runtime.store.read() as conn:
        o = dashboard.overview(conn, now=T0 + timedelta(days=2, hours=1), days=3)
    assert o["days"] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert o["trend"]["orders"] == [1, 1, 2]
    assert o["trend"]["routed"] == [1, 1, 0]
    assert o["trend"]["backordered"] == [0, 0, 1]
    assert o["trend"]["split_rate"] == [0.0, 1.0, None]
    assert o["trend"]["cost_per_order"] == ["5.50", "11.00", None]
    assert o["today"] == {"orders": 2, "routed": 0, "backordered": 1}
    assert o["orders"] == 4 and o["routed"] == 2 and o["backordered"] == 1
    assert Decimal(o["cost_per_order"]) == (Decimal("5.50") + Decimal("11.00")) / 2
    assert o["split_shipment_rate"] == 0.5
    assert o["oversold_units"] == 0
    assert o["on_time_rate"] is None


def test_the_order_list_searches_and_pages_by_keyset(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 50, ("Y", "b"): 50})
    ids = [place(runtime, str(n), ("X" if n % 2 else "Y", 1), day=0) for n in range(1, 8)]
    with runtime.store.read() as conn:
        seen, cursor = [], None
        while True:
            page, cursor = dashboard.order_list(conn, before=cursor, limit=3)
            seen += [r["id"] for r in page]
            if cursor is None:
                break
        assert seen == sorted(ids, reverse=True)  # each once, newest first
        by_name = dashboard.order_list(conn, q="3")[0]
        assert [r["name"] for r in by_name] == ["#3"]
        assert [r["name"] for r in dashboard.order_list(conn, q="#5")[0]] == ["#5"]
        by_sku = dashboard.order_list(conn, q="Y")[0]
        assert sorted(r["name"] for r in by_sku) == ["#2", "#4", "#6"]
        assert dashboard.order_list(conn, q="100%")[0] == []  # a wildcard is a character
        assert dashboard.order_list(conn, q="country")[0] == []  # a key is not a customer


def test_the_order_list_finds_a_customer_by_part_of_their_name(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 50})
    for n, name in ((1, "Ada Lovelace"), (2, "Alan Turing"), (3, None)):
        base = order(("X", 1), external_id=str(n))
        address = dataclasses.replace(base.shipping_address, name=name)
        with runtime.store.transaction() as tx:
            orders.receive_order(
                tx,
                dataclasses.replace(base, shipping_address=address),
                geocode=runtime.geocode,
                now=T0,
            )
    with runtime.store.read() as conn:
        assert [r["customer"] for r in dashboard.order_list(conn, q="lovel")[0]] == ["Ada Lovelace"]
        assert len(dashboard.order_list(conn, q="a")[0]) == 2


def test_a_customer_search_reads_a_bounded_window_a_page_and_still_finds_every_match(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    network(runtime.engine, {("X", "a"): 50})
    for n in range(1, 11):
        base = order(("X", 1), external_id=str(n))
        name = "Grace Hopper" if n in (2, 3, 9) else "Someone Else"
        address = dataclasses.replace(base.shipping_address, name=name)
        with runtime.store.transaction() as tx:
            orders.receive_order(
                tx,
                dataclasses.replace(base, shipping_address=address),
                geocode=runtime.geocode,
                now=T0,
            )
    monkeypatch.setattr(dashboard, "SCAN_WINDOW", 3)
    found, pages, cursor = [], 0, None
    with runtime.store.read() as conn:
        while True:
            page, cursor = dashboard.order_list(conn, q="hopper", before=cursor, limit=50)
            found += [r["name"] for r in page]
            pages += 1
            if cursor is None:
                break
    assert found == ["#9", "#3", "#2"]
    assert pages == 4  # ids 8-10, 5-7, 2-4, 1: three rows read a page


def test_stock_marks_low_levels_and_pages_by_keyset(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5, ("X", "b"): 0, ("Y", "a"): 2, ("Y", "b"): 9})
    with runtime.store.read() as conn:
        rows, nxt = dashboard.stock(conn, limit=3)
        assert [(r["sku"], r["location_id"]) for r in rows] == [("X", "a"), ("X", "b"), ("Y", "a")]
        assert nxt == ("Y", "a")
        rest, end = dashboard.stock(conn, after=nxt, limit=3)
        assert [(r["sku"], r["location_id"]) for r in rest] == [("Y", "b")] and end is None
        low = dashboard.stock(conn, low_only=True)[0]
        assert [(r["sku"], r["location_id"]) for r in low] == [("X", "b")]


def test_a_user_name_is_taken_once_and_a_short_password_is_refused(runtime: Runtime) -> None:
    users = SqlUserStore(runtime.store)
    users.add_user("Ann", "long-enough-1", Role.ADMIN, T0)
    with pytest.raises(Conflict):
        users.add_user("ann", "long-enough-2", Role.VIEWER, T0)
    with pytest.raises(InvalidInput):
        users.add_user("bob", "short", Role.VIEWER, T0)
    assert [(u.username, u.role) for u in users.users()] == [("ann", Role.ADMIN)]
    assert users.authenticate("ANN", "long-enough-1") is not None
    users.set_password("ann", "another-password", T0)
    assert users.authenticate("ann", "long-enough-1") is None
    assert users.authenticate("ann", "another-password") is not None
