"""A lane asked for without a carrier service."""

from __future__ import annotations

from aoms.domain.promise import PromiseModel, Transit


def test_a_route_known_only_by_its_services_promises_from_the_route_when_none_is_asked() -> None:
    # SP → RJ: 20 deliveries by "sedex", 2 days each. AM → RJ: 20 by "pac", 12 days each.
    # No delivery has an empty service. At 90% and prior weight 10:
    #   destination RJ (40 samples): the 90% quantile of twenty 2s and twenty 12s is 12;
    #     shrunk toward the overall 12: 12.
    #   route SP → RJ (20 samples): own 2, parent RJ 12: (20·2 + 10·12) / 30 = 5.33 → 6 days.
    # A promise for SP → RJ without a service (what GET /v1/orders/{id}/promise asks for by
    # default, and the lab always) must come from the route it has history for: 6 days,
    # basis "route" — not the destination's 12 days, which is mostly AM's slow lane.
    history = [Transit("BR-SP", "BR-RJ", 2, "sedex")] * 20
    history += [Transit("BR-AM", "BR-RJ", 12, "pac")] * 20
    model = PromiseModel.fit(history, confidence=0.9, prior_weight=10)
    estimate = model.estimate("BR-SP", "BR-RJ")
    assert (estimate.days, estimate.basis) == (6, "route")
