"""Stock per SKU and location."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StockLevel:
    sku: str
    location_id: str
    on_hand: int
    reserved: int
    safety_stock: int = 0

    @property
    def available(self) -> int:
        """on_hand − reserved − safety stock, never below zero for selling purposes."""
        return max(0, self.on_hand - self.reserved - self.safety_stock)

    @property
    def oversold(self) -> int:
        """Units promised beyond what is physically here (must always be 0)."""
        return max(0, self.reserved - self.on_hand)
