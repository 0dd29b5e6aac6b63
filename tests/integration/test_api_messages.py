"""Validation errors say what a field must be in words, never as the pattern that checks it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoms.bootstrap import Runtime
from aoms.entrypoints.api.app import PATTERN_WORDS, create_app


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, migrate_on_start=False)) as c:
        yield c


def test_a_lower_case_currency_is_refused_in_words(client: TestClient) -> None:
    answer = client.put(
        "/v1/shops/a.myshopify.com", json={"currency": "usd", "routing_policy": "optimal"}
    )
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert (body["code"], body["field"]) == ("invalid_input", "currency")
    assert body["detail"].endswith(
        "must be a three-letter ISO 4217 currency code in capitals, e.g. USD"
    ), body


def test_an_amount_given_as_a_number_pattern_is_refused_in_words(client: TestClient) -> None:
    bad = {"name": "A", "lat": 1, "lng": 1, "country_code": "US", "currency": "USD",
           "handling_cost": "1.23456"}  # fmt: skip
    answer = client.put("/v1/locations/a", json=bad)
    assert answer.status_code == 422, answer.text
    assert "at most 4 decimals" in answer.json()["detail"]
    assert "pattern" not in answer.json()["detail"]


def test_every_pattern_the_api_checks_has_words(client: TestClient) -> None:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(client.get("/openapi.json").json())
    assert found, "the OpenAPI document lists no patterns: the walk is broken"
    assert found - set(PATTERN_WORDS) == set()


def test_a_body_sent_as_a_form_says_it_must_be_json(client: TestClient) -> None:
    # curl -d without a content type sends application/x-www-form-urlencoded
    answer = client.put("/v1/shops/a.myshopify.com", content=b'{"currency": "USD"}',
                        headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert (body["code"], body["field"]) == ("invalid_input", "body")
    assert body["detail"] == (
        "body: the body must be a JSON object, sent with content-type: application/json"
    )


def test_the_api_docs_are_served_without_the_internet(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text  # every script and style comes from aoms itself
    assert "/docs/static/swagger-ui-bundle.js" in page.text
    js = client.get("/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get("/docs/static/swagger-ui.css").status_code == 200
