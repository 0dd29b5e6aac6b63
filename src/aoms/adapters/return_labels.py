"""The built-in return carrier: a printable ZPL label and a tracking number, made locally.

Real carrier adapters (rate shopping, bought labels, tracking feeds) plug in behind the same
`ReturnCarrier` port. The tracking number carries a mod-10 check digit so a mistyped scan is
refused before it is looked up.
"""

from __future__ import annotations

from aoms.services.returns_ports import Label, OrderFacts

CARRIER = "aoms-return"


def check_digit(digits: str) -> int:
    """Luhn check digit of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def tracking_number(return_id: int) -> str:
    body = f"{return_id:012d}"
    return f"RT{body}{check_digit(body)}"


def valid_tracking_number(value: str) -> bool:
    if len(value) != 15 or not value.startswith("RT") or not value[2:].isdigit():
        return False
    return check_digit(value[2:14]) == int(value[14])


def _zpl_text(value: str) -> str:
    """ZPL field data: ^ and ~ are commands, so they are replaced."""
    return value.replace("^", " ").replace("~", " ")[:60]


class BuiltinReturnCarrier:
    def return_label(self, return_id: int, order: OrderFacts, location_id: str | None) -> Label:
        number = tracking_number(return_id)
        a = order.order.shipping_address
        sender = ", ".join(x for x in (a.name, a.address1, a.zip, a.city, a.country_code) if x)
        document = "\n".join(
            [
                "^XA",
                "^CF0,40",
                f"^FO40,40^FDRETURN {_zpl_text(order.order.name)}^FS",
                "^CF0,28",
                f"^FO40,100^FDFrom: {_zpl_text(sender or 'customer')}^FS",
                f"^FO40,140^FDTo: {_zpl_text(location_id or 'returns desk')}^FS",
                f"^FO40,180^FDRMA {return_id}^FS",
                f"^FO40,240^BY3^BCN,120,Y,N,N^FD{number}^FS",
                "^XZ",
            ]
        )
        return Label(CARRIER, number, document)
