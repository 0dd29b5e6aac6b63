"""A fake EasyPost API (v2) speaking its documented objects: Shipment with Rates, buy with a
PostageLabel, refund, Tracker with TrackingDetails, Address with verifications."""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import Reply, Request

DEFAULT_SERVICES = [  # (carrier, service, base price, price per ounce, days)
    ("USPS", "GroundAdvantage", "5.20", "0.05", 4),
    ("USPS", "Priority", "8.10", "0.06", 2),
    ("UPS", "Ground", "9.30", "0.04", 3),
]


@dataclass
class FakeEasyPost:
    api_key: str = "EZTKtest0123"
    services: list[tuple[str, str, str, str, int]] = field(
        default_factory=lambda: list(DEFAULT_SERVICES)
    )
    base_url: str = ""  # set once the server runs (label URLs point back at it)
    shipments: dict[str, dict[str, Any]] = field(default_factory=dict)
    trackers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refunds: list[str] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _authorised(self, req: Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.api_key}:".encode()).decode()
        return req.headers.get("authorization") == expected

    def __call__(self, req: Request) -> Reply:
        if req.path.startswith("/labels/"):
            return Reply(200, b"%PDF-1.4 label " + req.path.encode(), "application/pdf")
        if not self._authorised(req):
            return Reply(401, {"error": {"code": "APIKEY.INACTIVE", "message": "API key required"}})
        parts = req.path.strip("/").split("/")
        if parts[:2] == ["v2", "shipments"] and len(parts) == 2 and req.method == "POST":
            return self._create(req.json()["shipment"])
        if parts[:2] == ["v2", "shipments"] and len(parts) == 4 and parts[3] == "buy":
            return self._buy(parts[2], req.json())
        if parts[:2] == ["v2", "shipments"] and len(parts) == 4 and parts[3] == "refund":
            return self._refund(parts[2])
        if parts == ["v2", "trackers"]:
            return self._tracker(req.json()["tracker"]["tracking_code"])
        if parts == ["v2", "addresses"]:
            return self._address(req.json())
        return Reply(404, {"error": {"code": "NOT_FOUND", "message": req.path}})

    def _create(self, s: dict[str, Any]) -> Reply:
        for key in ("to_address", "from_address", "parcel"):
            if key not in s:
                return Reply(
                    422, {"error": {"code": "PARAMETER.REQUIRED", "message": f"{key} required"}}
                )
        p = s["parcel"]
        if not all(
            isinstance(p.get(k), (int, float)) for k in ("length", "width", "height", "weight")
        ):
            return Reply(422, {"error": {"code": "SHIPMENT.PARCEL.INVALID", "message": "parcel"}})
        international = s["to_address"].get("country", "US") != s["from_address"].get(
            "country", "US"
        )
        if international and not s.get("customs_info"):
            return Reply(
                422, {"error": {"code": "SHIPMENT.CUSTOMS.REQUIRED", "message": "customs_info"}}
            )
        sid = f"shp_{next(self.ids):04d}"
        from decimal import Decimal

        rates = []
        for carrier, service, base, per_oz, days in self.services:
            price = (Decimal(base) + Decimal(per_oz) * Decimal(str(p["weight"]))).quantize(
                Decimal("0.01")
            )
            rates.append(
                {
                    "id": f"rate_{next(self.ids):04d}",
                    "object": "Rate",
                    "mode": "test",
                    "shipment_id": sid,
                    "carrier": carrier,
                    "service": service,
                    "rate": str(price),
                    "currency": s.get("options", {}).get("currency", "USD"),
                    "retail_rate": None,
                    "list_rate": str(price),
                    "delivery_days": days,
                    "est_delivery_days": days,
                    "delivery_date": None,
                    "delivery_date_guaranteed": False,
                    "carrier_account_id": "ca_0001",
                }
            )
        shipment = {
            "id": sid,
            "object": "Shipment",
            "mode": "test",
            "to_address": s["to_address"],
            "from_address": s["from_address"],
            "parcel": {"object": "Parcel", **p},
            "customs_info": s.get("customs_info"),
            "options": s.get("options", {}),
            "rates": rates,
            "selected_rate": None,
            "postage_label": None,
            "tracking_code": None,
            "refund_status": None,
            "messages": [],
        }
        self.shipments[sid] = shipment
        return Reply(201, shipment)

    def _buy(self, sid: str, body: dict[str, Any]) -> Reply:
        shipment = self.shipments.get(sid)
        if shipment is None:
            return Reply(404, {"error": {"code": "NOT_FOUND", "message": "shipment"}})
        rate = next((r for r in shipment["rates"] if r["id"] == body["rate"]["id"]), None)
        if rate is None:
            return Reply(422, {"error": {"code": "SHIPMENT.RATE.INVALID", "message": "rate"}})
        n = next(self.ids)
        code = f"9400100000000000{n:06d}"
        fmt = shipment["options"].get("label_format", "PNG")
        shipment.update(
            {
                "selected_rate": rate,
                "tracking_code": code,
                "postage_label": {
                    "object": "PostageLabel",
                    "id": f"pl_{n:04d}",
                    "label_file_type": {"PDF": "application/pdf", "ZPL": "application/zpl"}.get(
                        fmt, "image/png"
                    ),
                    "label_url": f"{self.base_url}/labels/{sid}.{fmt.lower()}",
                    "label_pdf_url": f"{self.base_url}/labels/{sid}.pdf" if fmt == "PDF" else None,
                },
                "tracker": {
                    "id": f"trk_{n:04d}",
                    "object": "Tracker",
                    "tracking_code": code,
                    "status": "pre_transit",
                },
            }
        )
        self.trackers[code] = []
        return Reply(200, shipment)

    def _refund(self, sid: str) -> Reply:
        shipment = self.shipments.get(sid)
        if shipment is None or not shipment["tracking_code"]:
            return Reply(422, {"error": {"code": "SHIPMENT.REFUND.INVALID", "message": "no label"}})
        self.refunds.append(sid)
        shipment["refund_status"] = "submitted"
        return Reply(200, shipment)

    def tracker(self, code: str) -> dict[str, Any]:
        details = self.trackers.get(code, [])
        return {
            "id": f"trk_{code[-4:]}",
            "object": "Tracker",
            "mode": "test",
            "tracking_code": code,
            "status": details[-1]["status"] if details else "unknown",
            "carrier": "USPS",
            "tracking_details": details,
            "est_delivery_date": None,
            "updated_at": details[-1]["datetime"] if details else None,
        }

    def _tracker(self, code: str) -> Reply:
        return Reply(201, self.tracker(code))

    def _address(self, body: dict[str, Any]) -> Reply:
        a = body["address"]
        ok = bool(a.get("street1")) and bool(a.get("zip"))
        errors = (
            []
            if ok
            else [
                {
                    "code": "E.ADDRESS.NOT_FOUND",
                    "field": "address",
                    "message": "Address not found",
                    "suggestion": None,
                }
            ]
        )
        return Reply(
            201,
            {
                "id": "adr_0001",
                "object": "Address",
                **a,
                "verifications": {"delivery": {"success": ok, "errors": errors, "details": {}}},
            },
        )
