"""Cartonisation: pack a fulfilment order's units into boxes from the merchant's box list.

First-fit decreasing by volume, with a rotation check: units are taken largest first; each goes
into the first open parcel whose box it fits (some rotation of its sides within the box's
inner sides), whose volume left holds it (at the box's fill ratio) and whose weight limit it
stays under; otherwise a new parcel is opened in the box with the most room that the unit fits.
At the end each parcel moves to the smallest box that still holds its contents. Volume is a
bound, not a 3-D placement: a box's `fill_pct` (below 100) leaves room for the shapes not
nesting perfectly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aoms.domain.errors import ItemFitsNoBox, MissingDimensions, NoBoxes
from aoms.domain.shipping import Dimensions, Parcel


@dataclass(frozen=True, slots=True)
class Box:
    code: str
    inner: Dimensions
    max_grams: int  # contents plus the box itself
    tare_grams: int = 0
    outer: Dimensions | None = None  # what the carrier measures; the inner size if not given
    fill_pct: int = 100

    @property
    def capacity_mm3(self) -> int:
        return self.inner.volume_mm3 * self.fill_pct // 100

    def takes(self, unit: Dimensions, grams: int) -> bool:
        return (
            unit.fits_in(self.inner)
            and unit.volume_mm3 <= self.capacity_mm3
            and (self.tare_grams + grams <= self.max_grams)
        )


@dataclass(frozen=True, slots=True)
class Unit:
    sku: str
    dims: Dimensions
    grams: int


@dataclass
class _Open:
    box: Box
    units: list[Unit] = field(default_factory=list)

    @property
    def volume(self) -> int:
        return sum(u.dims.volume_mm3 for u in self.units)

    @property
    def grams(self) -> int:
        return sum(u.grams for u in self.units)

    def holds(self, box: Box, extra: Unit | None = None) -> bool:
        units = [*self.units, *([extra] if extra else [])]
        return (
            all(u.dims.fits_in(box.inner) for u in units)
            and sum(u.dims.volume_mm3 for u in units) <= box.capacity_mm3
            and box.tare_grams + sum(u.grams for u in units) <= box.max_grams
        )


def cartonise(
    lines: Mapping[str, int],
    products: Mapping[str, tuple[Dimensions | None, int]],
    boxes: Sequence[Box],
) -> list[Parcel]:
    """Parcels for `lines` (sku -> units), given each sku's (dimensions, grams) and the boxes."""
    if not boxes:
        raise NoBoxes("no boxes to pack into: add the box list first (PUT /v1/shipping/boxes)")
    no_dims = sorted(s for s in lines if products.get(s, (None, 0))[0] is None)
    if no_dims:
        raise MissingDimensions(
            f"no dimensions for {', '.join(no_dims)}", field="dimensions", skus=no_dims
        )
    units: list[Unit] = []
    for sku, qty in sorted(lines.items()):
        dims, grams = products[sku]
        assert dims is not None
        units.extend(Unit(sku, dims, grams) for _ in range(qty))
    units.sort(key=lambda u: (-u.dims.volume_mm3, -u.grams, u.sku))
    by_room = sorted(boxes, key=lambda b: (-b.capacity_mm3, -b.max_grams, b.code))
    by_size = sorted(boxes, key=lambda b: (b.capacity_mm3, b.max_grams, b.code))
    parcels: list[_Open] = []
    for unit in units:
        target = next((p for p in parcels if p.holds(p.box, unit)), None)
        if target is None:
            box = next((b for b in by_room if b.takes(unit.dims, unit.grams)), None)
            if box is None:
                raise ItemFitsNoBox(
                    f"{unit.sku} ({unit.dims.length_mm}x{unit.dims.width_mm}x"
                    f"{unit.dims.height_mm} mm, {unit.grams} g) fits no box",
                    field="boxes",
                    sku=unit.sku,
                )
            target = _Open(box)
            parcels.append(target)
        target.units.append(unit)
    result = []
    for p in parcels:
        smallest = next(b for b in by_size if p.holds(b))
        counts = Counter(u.sku for u in p.units)
        result.append(
            Parcel(
                dims=smallest.outer or smallest.inner,
                grams=p.grams + smallest.tare_grams,
                box=smallest.code,
                items=tuple(sorted(counts.items())),
            )
        )
    return result
