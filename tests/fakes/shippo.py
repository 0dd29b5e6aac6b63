"""A fake Shippo API speaking its documented objects: Shipment with Rates, Transaction
(label), Refund, Track, Address validation."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.fakes.server import Reply, Request

DEFAULT_LEVELS = [  # (provider, servicelevel token, name, base, per kg, days)
    ("USPS", "usps_ground_advantage", "Ground Advantage", "5.05", "1.10", 4),
    ("USPS", "usps_priority", "Priority Mail", "7.95", "1.40", 2),
    ("FedEx", "fedex_home_delivery", "Home Delivery", "9.90", "0.90", 3),
]


@dataclass
class FakeShippo:
    token: str = "shippo_test_0123"
    levels: list[tuple[str, str, str, str, str, int]] = field(
        default_factory=lambda: list(DEFAULT_LEVELS)
    )
    base_url: str = ""
    rates: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[str] = field(default_factory=list)
    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _oid(self) -> str:
        return f"{next(self.ids):032x}"

    def __call__(self, req: Request) -> Reply:
        if req.path.startswith("/labels/"):
            return Reply(200, b"%PDF-1.4 shippo label " + req.path.encode(), "application/pdf")
        if req.headers.get("authorization") != f"ShippoToken {self.token}":
            return Reply(401, {"detail": "Invalid token."})
        parts = req.path.strip("/").split("/")
        if parts == ["shipments"] and req.method == "POST":
            return self._shipment(req.json())
        if parts == ["transactions"] and req.method == "POST":
            return self._transaction(req.json())
        if parts == ["refunds"] and req.method == "POST":
            return self._refund(req.json())
        if parts[0] == "tracks" and len(parts) == 3 and req.method == "GET":
            return Reply(200, self.track(parts[1], parts[2]))
        if parts == ["addresses"] and req.method == "POST":
            return self._address(req.json())
        return Reply(404, {"detail": "Not found."})

    def _shipment(self, s: dict[str, Any]) -> Reply:
        if not s.get("address_from") or not s.get("address_to") or not s.get("parcels"):
            return Reply(400, {"detail": "address_from, address_to and parcels are required"})
        [p] = s["parcels"]
        if p.get("mass_unit") != "g" or p.get("distance_unit") != "cm":
            return Reply(400, {"detail": "units"})
        international = s["address_to"].get("country") != s["address_from"].get("country")
        if international and not s.get("customs_declaration"):
            return Reply(400, {"customs_declaration": ["required for international shipments"]})
        sid = self._oid()
        kg = Decimal(p["weight"]) / 1000
        rates = []
        for provider, token, name, base, per_kg, days in self.levels:
            amount = (Decimal(base) + Decimal(per_kg) * kg).quantize(Decimal("0.01"))
            rate = {
                "object_id": self._oid(),
                "shipment": sid,
                "amount": str(amount),
                "currency": "USD",
                "amount_local": str(amount),
                "currency_local": "USD",
                "provider": provider,
                "servicelevel": {"name": name, "token": token},
                "estimated_days": days,
                "duration_terms": f"Delivery in {days} days.",
                "attributes": [],
                "messages": [],
            }
            self.rates[rate["object_id"]] = rate
            rates.append(rate)
        return Reply(
            201,
            {
                "object_id": sid,
                "object_state": "VALID",
                "status": "SUCCESS",
                "address_from": s["address_from"],
                "address_to": s["address_to"],
                "parcels": s["parcels"],
                "rates": rates,
                "messages": [],
            },
        )

    def _transaction(self, body: dict[str, Any]) -> Reply:
        rate = self.rates.get(body.get("rate", ""))
        if rate is None:
            return Reply(
                201,
                {
                    "object_id": self._oid(),
                    "status": "ERROR",
                    "tracking_number": None,
                    "label_url": None,
                    "messages": [{"source": "Shippo", "code": "rate", "text": "Rate not found"}],
                },
            )
        oid = self._oid()
        tn = f"9205590{next(self.ids):015d}"
        tx = {
            "object_id": oid,
            "object_state": "VALID",
            "status": "SUCCESS",
            "rate": rate["object_id"],
            "tracking_number": tn,
            "tracking_status": "UNKNOWN",
            "label_url": f"{self.base_url}/labels/{oid}.pdf",
            "label_file_type": body.get("label_file_type"),
            "messages": [],
        }
        self.transactions[oid] = tx
        self.tracks[tn] = {"history": [], "carrier": rate["provider"].lower()}
        return Reply(201, tx)

    def _refund(self, body: dict[str, Any]) -> Reply:
        tx = self.transactions.get(body.get("transaction", ""))
        if tx is None:
            return Reply(400, {"transaction": ["Transaction not found"]})
        self.refunds.append(tx["object_id"])
        return Reply(
            201,
            {
                "object_id": self._oid(),
                "status": "QUEUED",
                "transaction": tx["object_id"],
                "test": True,
            },
        )

    def track(self, carrier: str, tn: str) -> dict[str, Any]:
        history = self.tracks.get(tn, {}).get("history", [])
        current = (
            history[-1]
            if history
            else {"status": "UNKNOWN", "status_details": "", "status_date": None, "location": None}
        )
        return {
            "carrier": carrier,
            "tracking_number": tn,
            "eta": None,
            "servicelevel": {},
            "tracking_status": current,
            "tracking_history": history,
            "metadata": None,
        }

    def _address(self, body: dict[str, Any]) -> Reply:
        ok = bool(body.get("street1")) and bool(body.get("zip"))
        messages = (
            []
            if ok
            else [
                {
                    "source": "USPS",
                    "code": "Invalid Address",
                    "type": "address_error",
                    "text": "Address not found",
                }
            ]
        )
        return Reply(
            201,
            {
                "object_id": self._oid(),
                **body,
                "is_complete": ok,
                "validation_results": {"is_valid": ok, "messages": messages},
            },
        )
