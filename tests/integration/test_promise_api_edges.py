"""Delivery-history rows at the edges, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import create_app


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(runtime, migrate_on_start=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _delivery(**extra: Any) -> dict[str, Any]:
    return {
        "origin_country": "BR",
        "origin_region": "SP",
        "destination_country": "BR",
        "destination_region": "RJ",
        "ordered_at": "2026-10-01T10:00:00Z",
        "delivered_at": "2026-10-03T10:00:00Z",
        **extra,
    }


@pytest.mark.parametrize(
    ("ordered_at", "delivered_at"),
    [
        # 23:00 at UTC-5 on the last day of year 9999 is year 10000 in UTC.
        ("9999-12-31T23:00:00-05:00", "9999-12-31T23:30:00-05:00"),
        # 00:30 at UTC+5 on 1 January of year 1 is before year 1 in UTC.
        ("0001-01-01T00:30:00+05:00", "2026-01-01T00:00:00Z"),
    ],
)
def test_a_delivery_time_that_leaves_the_calendar_in_utc_is_refused_not_a_server_error(
    client: TestClient, ordered_at: str, delivered_at: str
) -> None:
    body = {"deliveries": [_delivery(ordered_at=ordered_at, delivered_at=delivered_at)]}
    response = client.post("/v1/delivery-history", json=body)
    assert response.status_code == 422, response.text


def test_a_history_ordered_on_the_last_day_of_the_calendar_does_not_break_the_fit(
    client: TestClient,
) -> None:
    # Orders take times from 1970 to 2999 only; the history takes any aware time, and the fit
    # adds a day to the last ordered date (date.max + 1 day overflows).
    body = {
        "deliveries": [
            _delivery(ordered_at="9999-12-31T10:00:00Z", delivered_at="9999-12-31T12:00:00Z")
        ]
    }
    imported = client.post("/v1/delivery-history", json=body)
    fitted = client.post("/v1/promise-model/fit", json={})
    assert imported.status_code == 422 or fitted.status_code == 201, (imported.text, fitted.text)


def test_a_region_too_long_to_store_is_refused_alike_on_every_database(client: TestClient) -> None:
    # Country and region codes may each have 8 characters, but the stored region
    # ("ABCDEFGH-ABCDEFGH", 17) has room for 16: PostgreSQL refuses it (422 value_out_of_range),
    # SQLite stores it. The API should refuse it before it reaches either.
    body = {
        "deliveries": [_delivery(destination_country="ABCDEFGH", destination_region="ABCDEFGH")]
    }
    response = client.post("/v1/delivery-history", json=body)
    assert response.status_code == 422, response.text
