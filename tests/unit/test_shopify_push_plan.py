"""Which Shopify fulfillment order line items carry the units aoms shipped (worked by hand)."""

from __future__ import annotations

from datetime import timedelta

from aoms.services.shopify_pushes import (
    ShopifyFo,
    ShopifyFoLine,
    ShopifyOrderState,
    already_there,
    hold_tag,
    plan_fulfilment,
    retry_wait,
)

X, Y = "gid://shopify/LineItem/1", "gid://shopify/LineItem/2"
L1, L2 = "gid://shopify/Location/1", "gid://shopify/Location/2"


def fo(id: str, status: str, location: str, *lines: tuple[str, str, int]) -> ShopifyFo:
    return ShopifyFo(id, status, location, tuple(ShopifyFoLine(*ln) for ln in lines))


def test_units_come_from_the_location_they_left_first_then_from_the_others() -> None:
    state = ShopifyOrderState(
        (fo("F1", "OPEN", L1, ("a", X, 2)), fo("F2", "IN_PROGRESS", L2, ("b", X, 3))),
        {},
    )
    plan = plan_fulfilment(state, {X: 4}, L2)
    # 3 of the 4 are open at L2 (F2); the 4th comes from F1 at L1 (moved there by the push).
    assert [(t.fo.id, t.lines) for t in plan.takes] == [("F2", {"b": 3}), ("F1", {"a": 1})]
    assert plan.short == {} and plan.held == {}


def test_closed_fulfillment_orders_are_passed_over_held_ones_counted_the_rest_short() -> None:
    state = ShopifyOrderState(
        (
            fo("F1", "CLOSED", L1, ("a", X, 5)),
            fo("F2", "ON_HOLD", L1, ("b", X, 1), ("c", Y, 2)),
            fo("F3", "OPEN", L2, ("d", Y, 1)),
        ),
        {},
    )
    plan = plan_fulfilment(state, {X: 2, Y: 1}, None)
    # Y: F3's one unit. X: none open; 1 on F2 (held); 1 open nowhere.
    assert [(t.fo.id, t.lines) for t in plan.takes] == [("F3", {"d": 1})]
    assert plan.held == {X: 1}
    assert plan.short == {X: 1}


def test_the_tag_and_the_wait_between_attempts() -> None:
    assert hold_tag("high_fraud_risk") == "aoms-hold-high-fraud-risk"
    waits = [retry_wait(n) for n in range(1, 10)]
    assert waits[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert waits[-1] == timedelta(hours=1)  # 30 s × 2^8 = 2 h 8 min, capped at an hour


def test_a_retry_sends_only_what_shopify_does_not_show_under_its_tracking_number() -> None:
    # Shopify shows 3 X and 1 Y under T-1; another push of the order took 2 of those X.
    state = ShopifyOrderState((), {"T-1": {X: 3, Y: 1}})
    assert already_there(state, "T-1", {X: 2, Y: 2}, {X: 2}) == {X: 1, Y: 1}
    assert already_there(state, "T-2", {X: 2}, {}) == {X: 0}  # another number: nothing yet
    assert already_there(state, None, {X: 2}, {}) == {X: 0}  # no number: nothing to go by
