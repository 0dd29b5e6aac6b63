"""Routing and reservation through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from aoms.adapters.db import queries
from aoms.adapters.db import schema as t
from aoms.adapters.geocode import geocode
from aoms.bootstrap import Runtime, build
from aoms.config import Settings
from aoms.domain.orders import OrderStatus
from aoms.domain.routing import Policy
from aoms.services import orders
from tests.builders import T0, later, network, order


def receive(rt: Runtime, o):  # type: ignore[no-untyped-def]
    with rt.store.transaction() as tx:
        return orders.receive_order(tx, o, geocode=geocode, now=T0)


def level(rt: Runtime, sku: str, loc: str) -> dict[str, object]:
    with rt.store.read() as conn:
        found = queries.stock_level(conn, sku, loc)
    assert found is not None
    return found


def test_an_order_is_routed_reserved_and_explained(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 2, ("X", "b"): 3, ("X", "c"): 5})
    result = receive(runtime, order(("X", 5)))
    assert result.status is OrderStatus.ROUTED
    assert (level(runtime, "X", "c")["reserved"], level(runtime, "X", "c")["available"]) == (5, 0)
    assert level(runtime, "X", "a")["reserved"] == 0
    with runtime.store.read() as conn:
        detail = queries.order_detail(conn, result.order_id)
    assert [(r["location_id"], r["quantity"]) for r in detail["reservations"]] == [("c", 5)]
    assert [(f["location_id"], f["items"]) for f in detail["fulfilment_orders"]] == [
        ("c", {"X": 5})
    ]
    assert detail["routing"][0]["cost"] == "12.50"
    assert detail["routing"][0]["explanation"].startswith("Chosen: C")


def test_one_sku_on_two_lines_with_one_unit_reserves_one_line_and_backorders_the_other(
    runtime: Runtime,
) -> None:
    network(runtime.engine, {("X", "a"): 1})
    result = receive(runtime, order(("X", 1), ("X", 1)))
    assert result.status is OrderStatus.BACKORDERED
    with runtime.store.read() as conn:
        detail = queries.order_detail(conn, result.order_id)
    assert [(ln["reserved"], ln["backordered"]) for ln in detail["lines"]] == [(1, 0), (0, 1)]
    assert detail["backordered_units"] == 1
    assert level(runtime, "X", "a")["available"] == 0


def test_cancel_releases_exactly_what_the_order_holds_and_a_second_cancel_nothing(
    runtime: Runtime,
) -> None:
    network(runtime.engine, {("X", "a"): 3, ("Y", "a"): 1})
    first = receive(runtime, order(("X", 2), external_id="1"))
    short = receive(runtime, order(("Y", 3), external_id="2"))  # 1 reserved, 2 backordered
    assert short.status is OrderStatus.BACKORDERED
    assert level(runtime, "X", "a")["reserved"] == 2
    for _ in range(2):
        with runtime.store.transaction() as tx:
            orders.cancel_order(tx, first.order_id, now=later(5))
        assert level(runtime, "X", "a")["reserved"] == 0
        assert level(runtime, "X", "a")["available"] == 3
    with runtime.store.transaction() as tx:
        orders.cancel_order(tx, short.order_id, now=later(5))
    assert level(runtime, "Y", "a")["reserved"] == 0  # released its 1, not the 2 it never had
    with runtime.store.read() as conn:
        released = conn.execute(
            select(func.count()).select_from(t.outbox).where(t.outbox.c.name == "stock.released")
        ).scalar_one()
    assert released == 2  # one per order that held stock, none for the repeat


def test_cancelling_an_order_that_holds_nothing_changes_no_stock(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 1})
    result = receive(runtime, order(("Z", 1)))  # nothing anywhere
    assert result.status is OrderStatus.BACKORDERED
    with runtime.store.transaction() as tx:
        orders.cancel_order(tx, result.order_id, now=later(1))
    assert (level(runtime, "X", "a")["on_hand"], level(runtime, "X", "a")["reserved"]) == (1, 0)


def test_a_newer_update_with_other_quantities_routes_again(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 5})
    receive(runtime, order(("X", 1)))
    again = receive(runtime, order(("X", 3), updated=later(1)))
    assert again.outcome is orders.Outcome.UPDATED
    assert level(runtime, "X", "a")["reserved"] == 3
    stale = receive(runtime, order(("X", 5), updated=later(0)))
    assert stale.outcome is orders.Outcome.STALE
    assert level(runtime, "X", "a")["reserved"] == 3


def test_every_state_change_writes_its_events_in_the_same_transaction(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 1})
    receive(runtime, order(("X", 1)))
    with runtime.store.read() as conn:
        names = conn.execute(select(t.outbox.c.name).order_by(t.outbox.c.id)).scalars().all()
    assert names == ["order.received", "order.routed", "stock.reserved"]
    runtime.relay_events()
    assert [e.name for _, e in runtime.recent_events] == names
    assert runtime.relay_events() == 0  # delivered once, marked


def test_ledger_movements_add_up_to_the_stock_levels(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 4, ("X", "b"): 4})
    for i in range(6):
        receive(runtime, order(("X", 2), external_id=str(i)))
    with runtime.store.read() as conn:
        s, m = t.stock_levels.c, t.stock_movements.c
        levels = {
            (r.sku, r.location_id): (r.on_hand, r.reserved)
            for r in conn.execute(select(s.sku, s.location_id, s.on_hand, s.reserved))
        }
        sums = {
            (r.sku, r.location_id): (int(r[2]), int(r[3]))
            for r in conn.execute(
                select(
                    m.sku, m.location_id, func.sum(m.on_hand_delta), func.sum(m.reserved_delta)
                ).group_by(m.sku, m.location_id)
            )
        }
        summary = queries.summary(conn)
    assert levels == sums == {("X", "a"): (4, 4), ("X", "b"): (4, 4)}
    assert summary["oversold_units"] == 0
    assert summary["backordered_units"] == 4


def test_a_newer_update_of_a_backordered_order_takes_stock_that_arrived(runtime: Runtime) -> None:
    network(runtime.engine, {("X", "a"): 1})
    first = receive(runtime, order(("X", 3)))
    assert first.status is OrderStatus.BACKORDERED
    with runtime.store.transaction() as tx:
        tx.change_stock("X", "b", on_hand=5, reason="receipt", reference="asn-1", now=later(1))
    again = receive(runtime, order(("X", 3), updated=later(2)))
    assert again.status is OrderStatus.ROUTED
    assert level(runtime, "X", "a")["reserved"] + level(runtime, "X", "b")["reserved"] == 3


def test_a_shop_that_chose_no_policy_gets_the_configured_default(db_url: str) -> None:
    rt = build(Settings(database_url=db_url, default_routing_policy=Policy.SHOPIFY_DEFAULT,
                        run_workers=False))  # fmt: skip
    try:
        network(rt.engine, {("X", "a"): 5}, shop="registered.myshopify.com")
        result = receive(rt, order(("X", 1), shop="unregistered.myshopify.com"))
        with rt.store.read() as conn:
            detail = queries.order_detail(conn, result.order_id)
        assert detail["routing"][0]["policy"] == "shopify_default"
    finally:
        rt.close()
