"""Exact routing of one order: which location ships how many units of each SKU.

The problem, in minor units of the order's currency:

    minimise   Σ_l  y_l · (w_h·handling_l + split + speed·km_l)          (each shipment)
             + Σ_l  w_s · price(km_l, weight_l)                         (rate card, by band)
             + Σ_ls x_ls · λ_ls                                         (opportunity cost)
             + Σ_s  b_s · backorder_penalty                             (units not shipped)
    subject to Σ_l x_ls + b_s = q_s;  x_ls ≤ min(a_ls, q_s)·y_l;  Σ_l y_l ≤ max_shipments;
               SKUs of a ship-together group come from at most one location.

The rate card is a step function of the shipment's weight; one binary per reachable weight
band and location, with the band's lower and upper weight as constraints, makes it exact for
any card (monotone or not). HiGHS solves the MILP to a zero gap and reports its dual bound,
which is the proof of optimality.

Fast paths prove the optimum without the solver for the common orders: a single unit (the
best location is optimal), and orders that one location can ship whole, when that location's
cost is no more than a lower bound on every plan with two or more shipments or a backorder.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
from highspy._core import _Highs

_INF = highspy.kHighsInf


@dataclass(frozen=True, slots=True)
class Site:
    """One location as the optimiser sees it for one order (costs in minor units)."""

    key: str
    km: float
    handling: int
    available: Mapping[str, int]  # only SKUs of this order, only > 0
    band_upper_g: Sequence[int]  # ascending weight-band upper bounds (last = unbounded)
    band_price: Sequence[int]  # rate-card price at this distance, per weight band
    opportunity: Mapping[str, float] = field(default_factory=dict)  # λ per unit of a SKU

    def price(self, grams: int) -> int:
        for upper, price in zip(self.band_upper_g, self.band_price, strict=True):
            if grams <= upper:
                return price
        return self.band_price[-1]


@dataclass(frozen=True, slots=True)
class Weights:
    shipping: float = 1.0
    handling: float = 1.0
    split_penalty: int = 0  # minor units per shipment beyond the first
    per_km: float = 0.0  # minor units per km of each shipment (the value of speed)
    backorder_penalty: int = 100_000  # minor units per unit left unshipped


@dataclass(frozen=True, slots=True)
class Problem:
    units: Mapping[str, int]  # sku -> units wanted (> 0)
    grams: Mapping[str, int]  # sku -> grams per unit
    sites: Sequence[Site]
    weights: Weights = Weights()
    max_shipments: int = 3
    ship_together: Sequence[frozenset[str]] = ()


@dataclass(frozen=True, slots=True)
class Solution:
    taken: dict[str, dict[str, int]]  # site key -> sku -> units (no empty entries)
    backordered: dict[str, int]
    objective: float  # in minor units, as minimised (the first shipment carries no split)
    bound: float  # a proven lower bound on the objective of every feasible plan
    method: str  # "single-unit" | "dominance" | "search" | "search-limited" | "milp" | "empty"

    @property
    def gap(self) -> float:
        return max(0.0, self.objective - self.bound)


def terms(problem: Problem, taken: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """The objective of a plan, term by term (minor units)."""
    w = problem.weights
    sites = {s.key: s for s in problem.sites}
    out = {"shipping": 0.0, "handling": 0.0, "split": 0.0, "speed": 0.0, "scarcity": 0.0}
    shipped: dict[str, int] = {}
    for key, items in taken.items():
        site = sites[key]
        grams = sum(problem.grams.get(s, 0) * q for s, q in items.items())
        out["shipping"] += w.shipping * site.price(grams)
        out["handling"] += w.handling * site.handling
        out["speed"] += w.per_km * site.km
        for sku, q in items.items():
            out["scarcity"] += site.opportunity.get(sku, 0.0) * q
            shipped[sku] = shipped.get(sku, 0) + q
    out["split"] = w.split_penalty * max(0, len(taken) - 1)
    short = sum(max(0, q - shipped.get(s, 0)) for s, q in problem.units.items())
    out["backorder"] = float(w.backorder_penalty * short)
    return out


def objective(problem: Problem, taken: Mapping[str, Mapping[str, int]]) -> float:
    return sum(terms(problem, taken).values())


def _single_cost(problem: Problem, site: Site) -> float:
    return objective(problem, {site.key: dict(problem.units)})


def _shipment_floor(problem: Problem, site: Site) -> float:
    """The least any shipment from this site can cost (one unit of its lightest SKU)."""
    w = problem.weights
    lightest = min(problem.grams.get(s, 0) for s in site.available)
    bands = zip(site.band_upper_g, site.band_price, strict=True)
    reachable = [p for u, p in bands if u >= lightest]
    price = min(reachable or [site.band_price[-1]])
    return w.shipping * price + w.handling * site.handling + w.per_km * site.km


def solve(problem: Problem, *, exact_limit: int = 12, node_limit: int | None = None) -> Solution:
    """The cheapest plan and the proof: `bound` equals `objective` when the search was exhaustive.

    Orders with at most `exact_limit` distinct SKUs are solved by a depth-first branch and bound
    written for this problem (fast on small orders, exhaustive, so its answer is the optimum);
    larger ones by HiGHS's MILP with a zero gap, and so are orders whose search would need more
    than `SEARCH_NODES` nodes (many units over many holders). With `node_limit`, the search
    stops after that many nodes with the best plan found and the root's lower bound (method
    "search-limited"): for heuristic uses such as forecast prices, never for a proof.
    """
    units = {s: q for s, q in problem.units.items() if q > 0}
    sites = [s for s in problem.sites if any(s.available.get(k, 0) > 0 for k in units)]
    if not units:
        return Solution({}, {}, 0.0, 0.0, "empty")
    penalty = problem.weights.backorder_penalty
    if not sites:
        cost = float(penalty * sum(units.values()))
        return Solution({}, dict(units), cost, cost, "empty")
    whole = [s for s in sites if all(s.available.get(k, 0) >= q for k, q in units.items())]
    if sum(units.values()) == 1:
        # One unit: every plan is one location or a backorder.
        sku = next(iter(units))
        best = min(whole, key=lambda s: (_single_cost(problem, s), s.km, s.key))
        cost = _single_cost(problem, best)
        if cost <= penalty:
            return Solution({best.key: {sku: 1}}, {}, cost, cost, "single-unit")
        return Solution({}, {sku: 1}, float(penalty), float(penalty), "single-unit")
    incumbent: tuple[float, dict[str, dict[str, int]]] | None = None
    if whole:
        best = min(whole, key=lambda s: (_single_cost(problem, s), s.km, s.key))
        cost = _single_cost(problem, best)
        incumbent = (cost, {best.key: dict(units)})
        floors = sorted(_shipment_floor(problem, s) for s in sites)
        least_scarcity = sum(
            q * min(s.opportunity.get(k, 0.0) for s in sites if s.available.get(k, 0) > 0)
            for k, q in units.items()
        )
        split_floor = (
            floors[0] + floors[1] + problem.weights.split_penalty + least_scarcity
            if len(floors) > 1 and problem.max_shipments > 1
            else math.inf
        )
        if cost <= min(split_floor, penalty):  # every other kind of plan costs at least this
            return Solution({best.key: dict(units)}, {}, cost, cost, "dominance")
    if len(units) <= exact_limit:
        found = _search(problem, units, sites, incumbent, node_limit or SEARCH_NODES)
        if node_limit is not None or found.method == "search":
            return found
        # Too many ways to split (wholesale quantities, many holders): HiGHS proves it faster.
    return _milp(problem, units, sites)


# The depth-first search's budget before HiGHS takes over: typical orders need a few hundred
# nodes; an order of thousands of units, or of a dozen units of many SKUs over many holders,
# would need millions.
SEARCH_NODES = 20_000


class _OutOfNodes(Exception):
    pass


def _search(
    problem: Problem,
    units: Mapping[str, int],
    sites: Sequence[Site],
    incumbent: tuple[float, dict[str, dict[str, int]]] | None,
    node_limit: int | None = None,
) -> Solution:
    """Exhaustive depth-first branch and bound over each SKU's split across locations."""
    w = problem.weights
    n = len(sites)
    fixed = [w.handling * s.handling + w.per_km * s.km for s in sites]
    # floor[i][b]: the least price of a shipment from site i whose weight is in band b or above
    # (sites at the same distance band share a row of prices, and so their floor)
    floors: dict[tuple[int, ...], list[float]] = {}
    floor: list[list[float]] = []
    for s in sites:
        row = tuple(s.band_price)
        prices = floors.get(row)
        if prices is None:
            prices = [w.shipping * p for p in row]
            for b in range(len(prices) - 2, -1, -1):
                prices[b] = min(prices[b], prices[b + 1])
            floors[row] = prices
        floor.append(prices)
    uppers = [s.band_upper_g for s in sites]
    last_band = [len(u) - 1 for u in uppers]

    def least(i: int, grams: int) -> float:
        return floor[i][min(bisect.bisect_left(uppers[i], grams), last_band[i])]

    group_of = {sku: g for g, members in enumerate(problem.ship_together) for sku in members}
    held = dict.fromkeys(units, 0)  # how many sites hold each SKU
    for s in sites:
        for k, a in s.available.items():
            if a > 0 and k in held:
                held[k] += 1
    # Hardest SKUs first: fewest places to come from, then heaviest.
    order = sorted(units, key=lambda k: (held[k], -problem.grams.get(k, 0) * units[k], k))
    depths = len(order)
    # Cheaper sites first, so that good plans are found early and prune the rest.
    by_cost = sorted(range(n), key=lambda i: (fixed[i] + floor[i][0], sites[i].key))
    where = [[i for i in by_cost if sites[i].available.get(k, 0) > 0] for k in order]
    if any(s.opportunity for s in sites):
        lam = [[sites[i].opportunity.get(k, 0.0) for i in range(n)] for k in order]
    else:
        lam = [[0.0] * n for _ in order]
    # The least any remaining SKU adds per unit (scarcity or backorder), from depth d on.
    penalty = w.backorder_penalty
    per_unit = [min([lam[d][i] for i in where[d]] + [float(penalty)]) for d in range(depths)]
    tail = [0.0] * (depths + 1)
    for d in range(depths - 1, -1, -1):
        tail[d] = tail[d + 1] + per_unit[d] * units[order[d]]
    grams_of = [problem.grams.get(k, 0) for k in order]
    weight = [0] * n
    # fixed[i] + least(i, weight[i]): the least a shipment from site i costs with what it has
    # taken so far, kept up to date as its weight changes
    open_cost = fixed[:]
    count = [0] * n  # SKUs (not units) taken from each site
    plan: list[list[int]] = [[0] * n for _ in order]
    best_cost = incumbent[0] if incumbent else math.inf
    best_plan: dict[str, dict[str, int]] | None = incumbent[1] if incumbent else None
    group_site: dict[int, int] = {}
    split = w.split_penalty
    max_shipments = problem.max_shipments
    scar = 0.0
    short = 0
    in_use = 0  # bit i set: site i is opened

    units_of = [units[k] for k in order]
    # Per SKU, its holders: (site, units there, what opening the site for a first unit of the
    # SKU costs at least).
    holders = [
        [(i, sites[i].available[k], fixed[i] + least(i, grams_of[d]) + split) for i in where[d]]
        for d, k in enumerate(order)
    ]
    short_cost = [penalty - per_unit[d] for d in range(depths)]

    opened: list[int] = []  # the sites in use, in the order they were opened
    # needs[sites in use][d]: the dearest single need of the SKUs from depth d on. It depends
    # on nothing else, and the search comes back to the same few sets of sites again and again.
    needs: dict[int, list[float]] = {}

    def dearest_needs() -> list[float]:
        """A later SKU that the sites in use cannot cover needs one more site or a backorder;
        count only the dearest such need (one new site may serve several SKUs)."""
        extra = [0.0] * (depths + 1)
        can_open = len(opened) < max_shipments
        first = split if not opened else 0
        for d in range(depths - 1, -1, -1):
            extra[d] = extra[d + 1]
            missing = units_of[d]
            for i, a, _ in holders[d]:
                if count[i]:
                    missing -= a
            if missing <= 0:
                continue
            need = short_cost[d] * missing
            if can_open:
                for i, _, opening in holders[d]:
                    if not count[i] and opening - first < need:
                        need = opening - first
            extra[d] = max(extra[d], need)
        return extra

    def lower_bound(depth: int) -> float:
        total = scar + penalty * short + tail[depth]
        for i in opened:
            total += open_cost[i]
        k_used = len(opened)
        if k_used > 1:
            total += split * (k_used - 1)
        extra = needs.get(in_use)
        if extra is None:
            extra = needs[in_use] = dearest_needs()
        return total + extra[depth]

    def record() -> None:
        nonlocal best_cost, best_plan
        taken: dict[str, dict[str, int]] = {}
        for d, k in enumerate(order):
            for i in range(n):
                if plan[d][i]:
                    taken.setdefault(sites[i].key, {})[k] = plan[d][i]
        cost = objective(problem, taken)
        if cost < best_cost - 1e-9:
            best_cost, best_plan = cost, taken

    nodes = 0
    budget = node_limit if node_limit is not None else math.inf

    def place(depth: int, k: str, left: int, start: int) -> None:
        """Spread the `left` units of SKU `order[depth]` over sites from index `start` on."""
        nonlocal scar, short, nodes, in_use
        nodes += 1
        if nodes > budget:
            raise _OutOfNodes
        if lower_bound(depth + 1) + per_unit[depth] * left >= best_cost - 1e-9:
            return
        if left == 0:
            descend(depth + 1)
            return
        group = group_of.get(k)
        here = where[depth]
        row = plan[depth]
        lam_k = lam[depth]
        grams = grams_of[depth]
        for j in range(start, len(here)):
            i = here[j]
            if group is not None and group_site.get(group, i) != i:
                continue
            new_site = count[i] == 0
            if new_site and len(opened) >= max_shipments:
                continue
            cap = min(holders[depth][j][1], left)
            was = open_cost[i]
            if new_site:
                opened.append(i)
                in_use |= 1 << i
            count[i] += 1
            had_group = group is not None and group in group_site
            if group is not None:
                group_site[group] = i
            for q in range(cap, 0, -1):
                row[i] = q
                weight[i] += grams * q
                open_cost[i] = fixed[i] + least(i, weight[i])
                scar += lam_k[i] * q
                place(depth, k, left - q, j + 1)
                scar -= lam_k[i] * q
                weight[i] -= grams * q
            row[i] = 0
            open_cost[i] = was
            if group is not None and not had_group:
                del group_site[group]
            count[i] -= 1
            if new_site:
                opened.pop()
                in_use ^= 1 << i
        # whatever is still left is backordered
        short += left
        descend(depth + 1)
        short -= left

    def descend(depth: int) -> None:
        if depth == depths:
            if lower_bound(depth) < best_cost - 1e-9:
                record()
            return
        place(depth, order[depth], units_of[depth], 0)

    root = lower_bound(0)
    limited = False
    try:
        descend(0)
    except _OutOfNodes:
        limited = True
        if best_plan is None:  # nothing found yet: everything backordered is always a plan
            best_plan = {}
            best_cost = objective(problem, best_plan)
    bound, method = (min(root, best_cost), "search-limited") if limited else (best_cost, "search")
    assert best_plan is not None
    shipped = {k: sum(t.get(k, 0) for t in best_plan.values()) for k in units}
    backordered = {k: q - shipped[k] for k, q in units.items() if q > shipped[k]}
    return Solution(best_plan, backordered, best_cost, bound, method)


_local = threading.local()


def _highs() -> Any:
    h = getattr(_local, "highs", None)
    if h is None:
        # The core class: `highspy.Highs` prints a banner to stdout when it is made, which
        # would corrupt `--json` output; the core one is silent and solves the same.
        h = _Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("mip_rel_gap", 0.0)
        h.setOptionValue("mip_abs_gap", 1e-6)
        h.setOptionValue("threads", 1)
        _local.highs = h
    else:
        h.clearModel()
    return h


class LinearModel:
    """Column-wise builder for a small LP or MILP, solved by HiGHS."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.upper: list[float] = []
        self.integer: list[bool] = []
        self.rows: list[tuple[list[int], list[float], float, float]] = []

    def var(self, cost: float, upper: float, integer: bool) -> int:
        self.cost.append(cost)
        self.upper.append(upper)
        self.integer.append(integer)
        return len(self.cost) - 1

    def row(self, index: list[int], value: list[float], lo: float, hi: float) -> int:
        self.rows.append((index, value, lo, hi))
        return len(self.rows) - 1

    def _pass(self, relax: bool, time_limit: float | None = None) -> Any:
        h = _highs()
        h.setOptionValue("time_limit", time_limit if time_limit is not None else _INF)
        lp = highspy.HighsLp()
        lp.num_col_ = len(self.cost)
        lp.num_row_ = len(self.rows)
        lp.col_cost_ = np.array(self.cost)
        lp.col_lower_ = np.zeros(len(self.cost))
        lp.col_upper_ = np.array(self.upper)
        lp.row_lower_ = np.array([r[2] for r in self.rows])
        lp.row_upper_ = np.array([r[3] for r in self.rows])
        starts = [0]
        index: list[int] = []
        value: list[float] = []
        for idx, val, _, _ in self.rows:
            index.extend(idx)
            value.extend(val)
            starts.append(len(index))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
        lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(value)
        if not relax:
            lp.integrality_ = [
                highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                for i in self.integer
            ]
        h.passModel(lp)
        h.run()
        status = h.getModelStatus()
        timed_out_with_a_solution = (
            status == highspy.HighsModelStatus.kTimeLimit
            and h.getInfo().primal_solution_status == 2  # feasible
        )
        if status != highspy.HighsModelStatus.kOptimal and not timed_out_with_a_solution:
            raise RuntimeError(f"HiGHS ended {h.modelStatusToString(status)}")
        return h

    def solve(self, time_limit: float | None = None) -> tuple[np.ndarray, float, float]:
        """The MILP: values, objective and HiGHS's proven lower bound (with `time_limit`
        seconds, the best solution found by then)."""
        h = self._pass(relax=False, time_limit=time_limit)
        info = h.getInfo()
        x = np.array(h.getSolution().col_value)
        return x, float(info.objective_function_value), float(info.mip_dual_bound)

    def solve_lp(self) -> tuple[np.ndarray, float, np.ndarray]:
        """The LP relaxation: values, objective and the dual value of each row."""
        h = self._pass(relax=True)
        solution = h.getSolution()
        x = np.array(solution.col_value)
        return x, float(h.getInfo().objective_function_value), np.array(solution.row_dual)


def _add_problem(
    m: LinearModel,
    problem: Problem,
    units: Mapping[str, int],
    sites: Sequence[Site],
) -> tuple[list[tuple[str, str, int]], dict[str, int]]:
    """Add one order's model; returns its unit columns (site, sku, column) and backorder ones."""
    w = problem.weights
    xs: list[tuple[str, str, int]] = []
    ys: dict[str, int] = {}
    per_sku: dict[str, list[int]] = {k: [] for k in units}
    group_of = {sku: i for i, g in enumerate(problem.ship_together) for sku in g}
    for site in sites:
        cols: list[tuple[int, float, int]] = []  # (column, grams, cap)
        skus = [k for k in units if site.available.get(k, 0) > 0]
        if not skus:
            continue
        y = m.var(w.handling * site.handling + w.per_km * site.km, 1, True)
        ys[site.key] = y
        for k in skus:
            cap = min(site.available[k], units[k])
            col = m.var(site.opportunity.get(k, 0.0), cap, True)
            xs.append((site.key, k, col))
            per_sku[k].append(col)
            cols.append((col, float(problem.grams.get(k, 0)), cap))
            m.row([col, y], [1.0, -cap], -_INF, 0.0)
        heaviest = sum(g * cap for _, g, cap in cols)
        lightest = min(g for _, g, _ in cols)
        bands: list[tuple[float, float, int]] = []  # (lower, upper, price)
        lower = 0.0
        for upper, price in zip(site.band_upper_g, site.band_price, strict=True):
            if upper >= lightest and lower <= heaviest:
                bands.append((lower, float(upper), price))
            lower = float(upper) + 1
        if lower <= heaviest:
            bands.append((lower, heaviest, site.band_price[-1]))
        if len(bands) == 1:
            m.cost[y] += w.shipping * bands[0][2]
            continue
        zs = [m.var(w.shipping * price, 1, True) for _, _, price in bands]
        m.row([*zs, y], [1.0] * len(zs) + [-1.0], 0.0, 0.0)
        idx = [c for c, _, _ in cols]
        grams = [g for _, g, _ in cols]
        m.row(idx + zs, grams + [-min(u, heaviest) for _, u, _ in bands], -_INF, 0.0)
        m.row(idx + zs, grams + [-lo for lo, _, _ in bands], 0.0, _INF)
    backorder = {k: m.var(float(w.backorder_penalty), q, False) for k, q in units.items()}
    for k, q in units.items():
        m.row([*per_sku[k], backorder[k]], [1.0] * (len(per_sku[k]) + 1), q, q)
    if ys:
        m.row(list(ys.values()), [1.0] * len(ys), 0.0, float(problem.max_shipments))
        splits = m.var(float(w.split_penalty), _INF, False)  # ≥ shipments beyond the first
        m.row([*ys.values(), splits], [1.0] * len(ys) + [-1.0], -_INF, 1.0)
    for gi in range(len(problem.ship_together)):
        members = [(s, k, c) for s, k, c in xs if group_of.get(k) == gi]
        by_site: dict[str, list[int]] = {}
        for s, _, c in members:
            by_site.setdefault(s, []).append(c)
        if len(by_site) < 2:
            continue
        us = {s: m.var(0.0, 1, True) for s in by_site}
        m.row(list(us.values()), [1.0] * len(us), 0.0, 1.0)
        for s, cols_ in by_site.items():
            for c in cols_:
                m.row([c, us[s]], [1.0, -float(m.upper[c])], -_INF, 0.0)
    return xs, backorder


def _milp(problem: Problem, units: Mapping[str, int], sites: Sequence[Site]) -> Solution:
    m = LinearModel()
    xs, _ = _add_problem(m, problem, units, sites)
    x, value, bound = m.solve()
    taken: dict[str, dict[str, int]] = {}
    for site_key, k, col in xs:
        q = round(x[col])
        if q > 0:
            taken.setdefault(site_key, {})[k] = q
    shipped = {k: sum(t.get(k, 0) for t in taken.values()) for k in units}
    short = {k: q - shipped[k] for k, q in units.items() if q > shipped[k]}
    return Solution(taken, short, objective(problem, taken), min(bound, value), "milp")
