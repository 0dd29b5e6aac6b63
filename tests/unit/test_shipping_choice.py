"""The carrier choice, customs refusal and invoice audit, on values worked out by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoms.domain.errors import CustomsDataMissing
from aoms.domain.money import Money
from aoms.domain.shipping import (
    CustomsLine,
    Duties,
    InvoiceLine,
    OnTimeRecord,
    Quote,
    Rule,
    ShippingRule,
    audit_invoice,
    choose,
    commercial_invoice,
)

MON = date(2026, 12, 7)


def usd(x: str) -> Money:
    return Money.of(x, "USD")


def q(carrier: str, service: str, amount: str, days: int) -> Quote:
    return Quote(carrier, service, usd(amount), days)


def test_a_cheaper_service_that_would_miss_the_promise_is_not_chosen() -> None:
    # Promise: Thursday 10th. Ground (3 days, arrives 10th) claims to make it, but its tracked
    # record is 60 on time of 100: (60 + 0.9*20) / (100 + 20) = 65% < 85%. Economy arrives
    # on the 12th. Priority (2 days, 96 of 100: 95%) is chosen although it costs more.
    quotes = [q("usps", "ground", "6.05", 3), q("usps", "priority", "9.10", 2),
              q("ups", "economy", "4.90", 5)]  # fmt: skip
    records = {
        ("usps", "ground"): OnTimeRecord(100, 60),
        ("usps", "priority"): OnTimeRecord(100, 96),
    }
    choice = choose(quotes, ShippingRule(), ship_on=MON, deliver_by=date(2026, 12, 10),
                    records=records)  # fmt: skip
    assert choice is not None
    assert choice.chosen.quote.service == "priority"
    assert choice.met_promise
    assert round(choice.chosen.on_time_rate, 4) == round(114 / 120, 4)
    reasons = {c.quote.service: c.reason for c in choice.rejected}
    assert reasons["ground"] == (
        "misses the promise: on time 65% (100 tracked deliveries), below 85%"
    )
    assert reasons["economy"] == "misses the promise: arrives 2026-12-12, after 2026-12-10"


def test_a_price_tie_goes_to_the_better_on_time_record() -> None:
    quotes = [q("fedex", "home", "7.00", 3), q("ups", "ground", "7.00", 3)]
    records = {("fedex", "home"): OnTimeRecord(50, 45), ("ups", "ground"): OnTimeRecord(50, 49)}
    choice = choose(quotes, ShippingRule(), ship_on=MON, deliver_by=None, records=records)
    assert choice is not None
    assert choice.chosen.quote.carrier == "ups"
    [lost] = choice.rejected
    assert lost.reason is not None and lost.reason.startswith("tie, lower on-time record: 90%")


def test_when_nothing_meets_the_promise_the_earliest_arrival_is_chosen() -> None:
    quotes = [q("usps", "ground", "6.05", 5), q("usps", "priority", "9.10", 3)]
    choice = choose(quotes, ShippingRule(), ship_on=MON, deliver_by=date(2026, 12, 8), records={})
    assert choice is not None and not choice.met_promise
    assert choice.chosen.quote.service == "priority"


def test_fastest_under_the_cost_cap() -> None:
    quotes = [q("ups", "next_day", "31.00", 1), q("usps", "priority", "9.10", 2),
              q("fedex", "2day", "9.10", 2), q("usps", "ground", "6.05", 4)]  # fmt: skip
    records = {("fedex", "2day"): OnTimeRecord(40, 39)}  # (39+18)/60 = 95% > usps's prior 90%
    rule = ShippingRule(Rule.FASTEST_UNDER_CAP, cost_cap=usd("12.00"))
    choice = choose(quotes, rule, ship_on=MON, deliver_by=None, records=records)
    assert choice is not None
    assert choice.chosen.quote.key == ("fedex", "2day")
    reasons = {c.quote.key: c.reason for c in choice.rejected}
    assert reasons[("ups", "next_day")] == "over the cost cap: 31.00 USD > 12.00 USD"
    assert reasons[("usps", "ground")] == "2 day(s) slower than fedex/2day"


def test_a_new_service_is_judged_by_the_prior() -> None:
    assert OnTimeRecord().rate(0.9, 10) == 0.9
    assert OnTimeRecord(10, 0).rate(0.9, 10) == pytest.approx(0.45)


prices = st.decimals(min_value=Decimal("1.00"), max_value=Decimal("99.99"), places=2)


@given(st.lists(st.tuples(prices, st.integers(1, 8), st.integers(0, 50)), min_size=1, max_size=8))
def test_the_chosen_quote_is_never_beaten_by_an_eligible_one(
    rows: list[tuple[Decimal, int, int]],
) -> None:
    quotes = [Quote("c", f"s{i}", Money(p, "USD"), d) for i, (p, d, _) in enumerate(rows)]
    records = {("c", f"s{i}"): OnTimeRecord(50, k) for i, (_, _, k) in enumerate(rows)}
    rule = ShippingRule()
    by = date(2026, 12, 12)
    choice = choose(quotes, rule, ship_on=MON, deliver_by=by, records=records)
    assert choice is not None
    assert len(choice.rejected) == len(quotes) - 1
    if choice.met_promise:
        for c in choice.rejected:
            eligible = c.arrives_on <= by and c.on_time_rate >= rule.min_on_time
            if eligible:
                assert choice.chosen.quote.amount <= c.quote.amount


def _line(sku: str, hs: str | None, origin: str | None = "CN") -> CustomsLine:
    return CustomsLine(sku, "Ceramic mug", 2, Money.of("24.00", "EUR"), 700, hs, origin)


def test_a_customs_shipment_missing_an_hs_code_is_refused() -> None:
    with pytest.raises(CustomsDataMissing) as err:
        commercial_invoice([_line("mug", "691200"), _line("cup", None)], exporter="US",
                           importer="DE", currency="EUR", duties=Duties.DDP)  # fmt: skip
    assert err.value.code == "customs_data_missing"
    assert err.value.field == "hs_code"
    assert err.value.details["problems"] == [
        {"sku": "cup", "field": "hs_code", "problem": "missing"}
    ]
    assert "cup" in err.value.message


def test_a_complete_invoice_totals_in_the_order_currency() -> None:
    lines = [_line("mug", "6912.00"), _line("cup", "691200", "PT")]
    inv = commercial_invoice(lines, exporter="US", importer="DE", currency="EUR", duties=Duties.DDU)
    assert inv.total == Money.of("48.00", "EUR")
    with pytest.raises(CustomsDataMissing) as err:
        commercial_invoice([_line("mug", "69", None)], exporter="US", importer="DE",
                           currency="EUR", duties=Duties.DDU)  # fmt: skip
    assert [p["field"] for p in err.value.details["problems"]] == ["hs_code", "country_of_origin"]


def test_invoice_audit_flags_each_line_over_its_quote() -> None:
    quoted = {"T1": usd("6.05"), "T2": usd("9.10"), "T3": usd("13.75")}
    lines = [
        InvoiceLine(1, "T1", usd("6.05")),  # as quoted
        InvoiceLine(2, "T2", usd("11.35")),  # 2.25 over
        InvoiceLine(3, "T3", usd("13.76")),  # 0.01 over
        InvoiceLine(4, "T9", usd("5.00")),  # not ours
        InvoiceLine(5, "T1", usd("6.05")),  # the same parcel billed again: all of it
        InvoiceLine(6, "T3", usd("1.00")),  # the same again
    ]
    report = audit_invoice(lines, quoted)
    assert [(f.line_no, f.problem) for f in report.findings] == [
        (2, "over_quote"), (3, "over_quote"), (4, "unknown_shipment"), (5, "billed_twice"),
        (6, "billed_twice"),
    ]  # fmt: skip
    # 2.25 + 0.01 + 6.05 + 1.00
    assert report.total_overcharge == {"USD": usd("9.31")}


cents = st.integers(min_value=0, max_value=100_000)


@given(
    st.lists(st.tuples(st.integers(0, 9), cents), max_size=30),
    st.lists(cents, min_size=10, max_size=10),
)
def test_the_total_overcharge_is_every_excess_over_the_quote_counted_once(
    billed: list[tuple[int, int]], quotes: list[int]
) -> None:
    quoted = {f"T{i}": Money.from_minor(q, "USD") for i, q in enumerate(quotes)}
    lines = [InvoiceLine(n, f"T{i}", Money.from_minor(c, "USD")) for n, (i, c) in enumerate(billed)]
    report = audit_invoice(lines, quoted)
    # Independently: the first bill of a parcel counts what it exceeds its quote by; any
    # later bill of the same parcel counts whole.
    expected, seen = 0, set()
    for i, c in billed:
        expected += c if i in seen else max(c - quotes[i], 0)
        seen.add(i)
    assert report.total_overcharge.get("USD", Money.zero("USD")).in_minor() == expected
    assert all(f.overcharge is None or f.overcharge.amount >= 0 for f in report.findings)
