"""Exact money: Decimal amounts in an ISO 4217 currency, rounded to its minor units.

Splits use the largest-remainder method, so the parts always add up to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from aoms.domain.errors import CurrencyMismatch, InvalidMoney

# Currencies whose minor unit is not 2 (ISO 4217). Every other 3-letter code has 2.
_MINOR_UNITS: dict[str, int] = {
    "BHD": 3,
    "BIF": 0,
    "CLF": 4,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "RWF": 0,
    "TND": 3,
    "UGX": 0,
    "UYI": 0,
    "UYW": 4,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


_EXPONENTS: dict[str, Decimal] = {}  # currency -> Decimal("0.01") etc., filled as codes are seen


def _exponent(currency: str) -> Decimal:
    exp = _EXPONENTS.get(currency)
    if exp is None:
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            raise InvalidMoney(f"not an ISO 4217 currency code: {currency!r}", field="currency")
        if not currency.isupper():
            return _exponent(currency.upper())
        exp = _EXPONENTS[currency] = Decimal(1).scaleb(-minor_units(currency))
    return exp


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        exponent = _exponent(self.currency)
        if not self.currency.isupper():
            object.__setattr__(self, "currency", self.currency.upper())
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise InvalidMoney(f"not a finite Decimal amount: {self.amount!r}", field="amount")
        if self.amount.as_tuple().exponent != exponent.as_tuple().exponent:
            try:
                quantized = self.amount.quantize(exponent)
            except InvalidOperation as exc:
                raise InvalidMoney(f"amount out of range: {self.amount}", field="amount") from exc
            if self.amount != quantized:
                raise InvalidMoney(
                    f"{self.amount} has more decimals than {self.currency} allows", field="amount"
                )
            object.__setattr__(self, "amount", quantized)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Parse an exact amount (a string such as Shopify's "199.00", or an int)."""
        if isinstance(amount, float):
            raise InvalidMoney("money is never a float; pass a string", field="amount")
        try:
            value = Decimal(amount) if not isinstance(amount, Decimal) else amount
        except (InvalidOperation, ValueError, TypeError) as exc:
            raise InvalidMoney(f"not an amount: {amount!r}", field="amount") from exc
        return cls(value, currency)

    @classmethod
    def rounded(cls, amount: Decimal, currency: str) -> Money:
        """Round a computed amount to the currency's minor unit (half to even)."""
        return cls(amount.quantize(_exponent(currency), rounding=ROUND_HALF_EVEN), currency)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        """An amount given in the currency's minor units (cents, or yen)."""
        return cls(Decimal(units).scaleb(-minor_units(currency)), currency)

    def in_minor(self) -> int:
        """The amount in the currency's minor units."""
        return int(self.amount.scaleb(minor_units(self.currency)))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        if not isinstance(factor, int):
            raise InvalidMoney("multiply money by whole numbers only; use allocate() to split")
        return Money(self.amount * factor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def allocate(self, weights: Sequence[int | Decimal]) -> list[Money]:
        """Split into parts proportional to `weights`; the parts sum exactly to self.

        Largest remainder: each part gets its floor in minor units, and the units left over
        go to the parts with the largest remainders (earlier parts win ties).
        """
        if not weights:
            raise InvalidMoney("allocate needs at least one weight")
        if any(w < 0 for w in weights):
            raise InvalidMoney("allocation weights must not be negative")
        total_weight = sum(Decimal(w) for w in weights)
        if total_weight == 0:
            raise InvalidMoney("allocation weights must not all be zero")
        scale = Decimal(10) ** minor_units(self.currency)
        units = int(self.amount * scale)
        sign = -1 if units < 0 else 1
        units = abs(units)
        exact = [Decimal(units) * Decimal(w) / total_weight for w in weights]
        floors = [int(e) for e in exact]
        left = units - sum(floors)
        order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
        for i in order[:left]:
            floors[i] += 1
        return [Money(Decimal(sign * f) / scale, self.currency) for f in floors]


def total(amounts: Sequence[Money], currency: str) -> Money:
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
