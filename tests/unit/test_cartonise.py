"""Cartonisation on hand-worked cases, and the invariants it keeps on random orders."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoms.domain.cartonise import Box, cartonise
from aoms.domain.errors import ItemFitsNoBox, MissingDimensions, NoBoxes
from aoms.domain.shipping import Dimensions

SMALL = Box("S", Dimensions(200, 150, 100), max_grams=5_000, tare_grams=100)  # 3,000,000 mm³
MEDIUM = Box("M", Dimensions(300, 200, 200), max_grams=10_000, tare_grams=200)  # 12,000,000
LARGE = Box("L", Dimensions(400, 300, 300), max_grams=20_000, tare_grams=400)  # 36,000,000
BOXES = [LARGE, SMALL, MEDIUM]  # the order given does not matter


def test_a_single_small_item_goes_in_the_smallest_box_that_holds_it() -> None:
    # 100x100x50 = 500,000 mm³, 300 g: fits S (200x150x100); S weighs 100 g empty.
    products = {"mug": (Dimensions(100, 100, 50), 300)}
    [parcel] = cartonise({"mug": 1}, products, BOXES)
    assert parcel.box == "S"
    assert parcel.grams == 400
    assert parcel.dims == Dimensions(200, 150, 100)
    assert parcel.items == (("mug", 1),)


def test_an_item_fits_by_rotation() -> None:
    # 90x190x140 fits S only turned (sorted sides 190,140,90 <= 200,150,100).
    [parcel] = cartonise({"book": 1}, {"book": (Dimensions(90, 190, 140), 500)}, BOXES)
    assert parcel.box == "S"


def test_units_that_do_not_fit_one_small_box_move_up_to_the_medium_box() -> None:
    # 7 units of 100x100x50 = 3,500,000 mm³ > S's 3,000,000, <= M's 12,000,000: one M parcel,
    # 7 x 300 g + 200 g tare = 2,300 g.
    products = {"mug": (Dimensions(100, 100, 50), 300)}
    [parcel] = cartonise({"mug": 7}, products, BOXES)
    assert (parcel.box, parcel.grams, parcel.items) == ("M", 2_300, (("mug", 7),))


def test_weight_limit_splits_the_order() -> None:
    # Dumbbells 150x100x100 (1,500,000 mm³), 9 kg each. The L box takes 20 kg with 400 g tare:
    # two (18 kg + 0.4) fit, a third (27.4 kg) does not. 5 units: L(2), L(2), then 1 alone,
    # which shrinks to M (9 kg + 200 g = 9,200 <= 10,000; S's 5 kg limit is too low).
    products = {"bell": (Dimensions(150, 100, 100), 9_000)}
    parcels = cartonise({"bell": 5}, products, BOXES)
    # Each pair shrinks too: 2 x 1,500,000 = 3,000,000 mm³ fits S by volume but 18 kg > 5 kg,
    # and > M's 10 kg, so the pairs stay in L.
    assert [(p.box, p.grams, p.items) for p in parcels] == [
        ("L", 18_400, (("bell", 2),)),
        ("L", 18_400, (("bell", 2),)),
        ("M", 9_200, (("bell", 1),)),
    ]


def test_largest_first_then_small_items_fill_the_gaps() -> None:
    # A lamp 350x250x250 (21,875,000 mm³, 2 kg) only fits L. Ten coasters 100x100x10
    # (100,000 mm³, 50 g each) go in the same L: 21,875,000 + 1,000,000 <= 36,000,000.
    products = {
        "lamp": (Dimensions(350, 250, 250), 2_000),
        "coaster": (Dimensions(100, 100, 10), 50),
    }
    [parcel] = cartonise({"coaster": 10, "lamp": 1}, products, BOXES)
    assert parcel.box == "L"
    assert parcel.items == (("coaster", 10), ("lamp", 1))
    assert parcel.grams == 2_000 + 500 + 400


def test_an_item_larger_than_every_box_is_refused_with_its_sku() -> None:
    with pytest.raises(ItemFitsNoBox) as err:
        cartonise({"rug": 1}, {"rug": (Dimensions(1200, 100, 100), 1_000)}, BOXES)
    assert err.value.code == "item_fits_no_box"
    assert err.value.details["sku"] == "rug"


def test_missing_dimensions_and_no_boxes_are_named() -> None:
    with pytest.raises(MissingDimensions) as err:
        cartonise({"a": 1, "b": 1}, {"a": (None, 10), "b": (Dimensions(1, 1, 1), 1)}, BOXES)
    assert err.value.details["skus"] == ["a"]
    with pytest.raises(NoBoxes):
        cartonise({"b": 1}, {"b": (Dimensions(1, 1, 1), 1)}, [])


def test_fill_ratio_leaves_room() -> None:
    # S at 50% fill holds 1,500,000 mm³: three 500,000 mm³ mugs fit, a fourth opens a new box.
    half = Box("S", Dimensions(200, 150, 100), max_grams=5_000, fill_pct=50)
    products = {"mug": (Dimensions(100, 100, 50), 300)}
    parcels = cartonise({"mug": 4}, products, [half])
    assert [p.items for p in parcels] == [(("mug", 3),), (("mug", 1),)]


side = st.integers(min_value=10, max_value=300)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]),
        st.tuples(st.integers(1, 6), side, side, side, st.integers(1, 8_000)),
        min_size=1,
    )
)
def test_every_unit_is_packed_once_within_every_limit(
    order: dict[str, tuple[int, int, int, int, int]],
) -> None:
    lines = {sku: v[0] for sku, v in order.items()}
    products = {sku: (Dimensions(v[1], v[2], v[3]), v[4]) for sku, v in order.items()}
    try:
        parcels = cartonise(lines, products, BOXES)
    except ItemFitsNoBox:
        return
    packed: dict[str, int] = {}
    boxes = {b.code: b for b in BOXES}
    for p in parcels:
        box = boxes[p.box or ""]
        assert p.grams <= box.max_grams
        volume = 0
        for sku, n in p.items:
            packed[sku] = packed.get(sku, 0) + n
            dims = products[sku][0]
            assert dims is not None and dims.fits_in(box.inner)
            volume += dims.volume_mm3 * n
        assert volume <= box.capacity_mm3
        assert p.grams == box.tare_grams + sum(products[s][1] * n for s, n in p.items)
    assert packed == lines
