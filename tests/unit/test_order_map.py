"""The order page's map: every point inside the picture, north up, east to the right."""

from __future__ import annotations

from typing import Any

from aoms.entrypoints.web.render import order_map


def _detail(dest: dict[str, Any] | None) -> dict[str, Any]:
    locs = [("nwk", 40.7, -74.2), ("chi", 41.9, -87.6), ("dfw", 32.9, -97.0), ("rno", 39.5, -119.8)]
    return {
        "locations": [
            {"id": i, "name": i.upper(), "lat": la, "lng": lo, "active": True} for i, la, lo in locs
        ],
        "destination": dest,
        "routing": [
            {
                "chosen": {"shipments": [{"location_id": "chi"}]},
                "runners_up": [{"shipments": [{"location_id": "nwk"}]}],
            }
        ],
    }


def test_points_fit_the_box_north_up_and_the_chosen_location_has_a_line() -> None:
    m = order_map(_detail({"lat": 42.4, "lng": -71.1, "source": "address"}))  # Boston
    spots = {s["id"]: s for s in m["spots"]}
    for s in [*spots.values(), m["dest"]]:
        assert 0 <= s["x"] <= m["width"] and 0 <= s["y"] <= m["height"]
    assert spots["rno"]["x"] < spots["chi"]["x"] < spots["nwk"]["x"] < m["dest"]["x"]
    assert spots["chi"]["y"] < spots["dfw"]["y"]  # Chicago is north of Dallas
    assert {s["id"]: s["kind"] for s in m["spots"]} == {
        "nwk": "candidate",
        "chi": "chosen",
        "dfw": "other",
        "rno": "other",
    }
    assert m["lines"] == [
        {
            "x1": spots["chi"]["x"],
            "y1": spots["chi"]["y"],
            "x2": m["dest"]["x"],
            "y2": m["dest"]["y"],
        }
    ]


def test_without_a_destination_the_locations_are_still_drawn() -> None:
    m = order_map(_detail(None))
    assert m["dest"] is None and m["lines"] == [] and len(m["spots"]) == 4
