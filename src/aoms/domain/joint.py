"""Many orders at once over shared stock: the clairvoyant's bound, stock shadow prices and the
re-plan of a wave, all by column generation over whole per-order plans (Dantzig–Wolfe).

Each order's plans come from the exact per-order optimiser in `aoms.domain.optimise`, run with
the stock rows' duals as extra opportunity costs (the pricing step), so the master LP reaches
its optimum over *every* plan of every order without listing them.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import highspy

from aoms.domain.optimise import LinearModel, Problem, Site, Solution, Weights, objective, solve

_INF = highspy.kHighsInf

Use = dict[tuple[str, str], int]  # (site, sku) -> units a plan takes from there
Column = tuple[float, Use]  # a whole plan for one order: its cost (without stock duals), its use


def _use(taken: Mapping[str, Mapping[str, int]]) -> Use:
    return {(site, k): q for site, items in taken.items() for k, q in items.items() if q}


@dataclass(frozen=True, slots=True)
class JointBound:
    bound: float  # a proven lower bound on the total cost of every plan for all the orders
    relaxation: float  # the restricted master LP's value at the end (≥ bound; equal if converged)
    rounds: int
    converged: bool
    seconds: float
    prices: dict[tuple[str, str], float]  # (site, sku) -> the last round's stock-row duals
    units_short: float = 0.0  # units the final master LP leaves unshipped (fractional)
    columns: list[list[Column]] = field(default_factory=list)  # per order, for a warm start


def _uniform(problem: Problem, penalty: int) -> Problem:
    w = problem.weights
    return Problem(
        {k: q for k, q in problem.units.items() if q > 0},
        problem.grams,
        [
            Site(s.key, s.km, s.handling, s.available, s.band_upper_g, s.band_price)
            for s in problem.sites
        ],
        Weights(w.shipping, w.handling, w.split_penalty, w.per_km, penalty),
        problem.max_shipments,
        problem.ship_together,
    )


def _priced(problem: Problem, prices: Mapping[tuple[str, str], float]) -> Problem:
    """The problem with the stock rows' duals added to each site's own opportunity costs."""
    if not prices:
        return problem
    sites = []
    for s in problem.sites:
        lam = dict(s.opportunity)
        for k in s.available:
            if (v := prices.get((s.key, k), 0.0)) > 0:
                lam[k] = lam.get(k, 0.0) + v
        sites.append(Site(s.key, s.km, s.handling, s.available, s.band_upper_g, s.band_price, lam))
    return Problem(
        problem.units, problem.grams, sites, problem.weights, problem.max_shipments,
        problem.ship_together,
    )  # fmt: skip


class _Master:
    """Column generation over whole per-order plans with shared stock (Dantzig–Wolfe).

    The master picks, for each order, a mix of plans (columns) within the stock; the pricing
    step is this module's exact per-order optimiser with the stock rows' duals as extra
    opportunity costs, so the master's optimum over *all* plans is reached without listing
    them. `counts[i]` says how many orders like problem i there are.
    """

    def __init__(
        self,
        problems: Sequence[Problem],
        stock: Mapping[tuple[str, str], int],  # (sku, site) -> units
        counts: Sequence[float],
        columns: Sequence[Sequence[Column]] | None = None,
        node_limit: int | None = None,
    ) -> None:
        self.problems = problems
        self.node_limit = node_limit
        self.stock = stock
        self.counts = counts
        self.columns: list[list[Column]] = []
        self.cache: dict[int, tuple[tuple[float, ...], Solution]] = {}
        for i, p in enumerate(problems):
            pool = list(columns[i]) if columns is not None else []
            if not pool:
                everything_short = float(p.weights.backorder_penalty * sum(p.units.values()))
                first = solve(p, node_limit=node_limit)
                pool = [(everything_short, {}), (first.objective, _use(first.taken))]
            self.columns.append(pool)

    def _model(
        self, integer: bool
    ) -> tuple[LinearModel, list[list[int]], dict[tuple[str, str], int]]:
        m = LinearModel()
        cols: list[list[int]] = []
        users: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        for plans, n in zip(self.columns, self.counts, strict=True):
            ids = []
            for cost, use in plans:
                c = m.var(cost, n, integer)
                ids.append(c)
                for key, q in use.items():
                    entry = users.setdefault(key, ([], []))
                    entry[0].append(c)
                    entry[1].append(float(q))
            cols.append(ids)
        for ids, n in zip(cols, self.counts, strict=True):
            m.row(ids, [1.0] * len(ids), n, n)
        stock_rows = {
            key: m.row(idx, val, -_INF, float(self.stock.get((key[1], key[0]), 0)))
            for key, (idx, val) in users.items()
        }
        return m, cols, stock_rows

    def run(self, max_rounds: int, seconds: float | None = None) -> JointBound:
        """Column generation: at most `max_rounds` rounds, and (with `seconds`) no new round or
        pricing begun after that long; the columns found so far stand."""
        started = time.perf_counter()
        out_of_time = False
        best = -math.inf
        value = math.inf
        prices: dict[tuple[str, str], float] = {}
        rounds = 0
        converged = False
        short = 0.0
        while rounds < max_rounds and not out_of_time:
            rounds += 1
            m, cols, stock_rows = self._model(integer=False)
            x, value, duals = m.solve_lp()
            short = sum(
                float(x[c]) * (sum(p.units.values()) - sum(use.values()))
                for ids, plans, p in zip(cols, self.columns, self.problems, strict=True)
                for c, (_, use) in zip(ids, plans, strict=True)
            )
            prices = {key: -float(duals[row]) for key, row in stock_rows.items()}
            prices = {key: v for key, v in prices.items() if v > 1e-9}
            # Lagrangian bound: Σ_orders n·min(cost + λ·use) − λ·stock, valid at any λ ≥ 0.
            lagrangian = -sum(v * self.stock.get((key[1], key[0]), 0) for key, v in prices.items())
            added = 0
            for o, p in enumerate(self.problems):
                if seconds is not None and time.perf_counter() - started > seconds:
                    out_of_time = True  # the bound of this round is incomplete: not counted
                    break
                priced = self._price(o, p, prices)
                lagrangian += self.counts[o] * priced.bound
                mu = float(duals[o])  # the dual of the order's convexity row
                if priced.objective - mu < -1e-6:
                    use = _use(priced.taken)
                    cost = priced.objective - sum(
                        prices.get(key, 0.0) * q for key, q in use.items()
                    )
                    self.columns[o].append((cost, use))
                    added += 1
            if not out_of_time:
                best = max(best, lagrangian)
            if not added and not out_of_time:
                converged = self.node_limit is None
                break
        return JointBound(
            best, value, rounds, converged, time.perf_counter() - started, prices, short,
            self.columns,
        )  # fmt: skip

    def _price(self, o: int, p: Problem, prices: Mapping[tuple[str, str], float]) -> Solution:
        """The order's best plan at these prices; solved again only when a price it can see
        has changed (most orders' prices settle after a few rounds)."""
        seen = tuple(
            round(prices.get((s.key, k), 0.0), 9) for s in p.sites for k in sorted(s.available)
        )
        hit = self.cache.get(o)
        if hit is not None and hit[0] == seen:
            return hit[1]
        solution = solve(_priced(p, prices), node_limit=self.node_limit)
        self.cache[o] = (seen, solution)
        return solution

    def integer_plans(self, time_limit: float | None = None) -> list[Use] | None:
        """The best whole plan per order among the columns generated, as one MILP (each order
        takes exactly one of its columns; the stock holds); None if HiGHS found no solution
        within `time_limit` seconds."""
        m, cols, _ = self._model(integer=True)
        try:
            x, _, _ = m.solve(time_limit)
        except RuntimeError:
            return None
        return [
            next(use for c, (_, use) in zip(ids, plans, strict=True) if x[c] > 0.5)
            for ids, plans in zip(cols, self.columns, strict=True)
        ]


def joint_bound(
    problems: Sequence[Problem],
    stock: Mapping[tuple[str, str], int],
    backorder_penalty: int,
    *,
    counts: Sequence[float] | None = None,
    max_rounds: int = 40,
    columns: Sequence[Sequence[Column]] | None = None,
    node_limit: int | None = None,
) -> JointBound:
    """The clairvoyant's bound: every order at once, with the shared stock, by column generation.

    Every round gives a Lagrangian bound, Σ_orders min(cost + λ·use) − λ·stock, a valid lower
    bound on any plan for all the orders at any λ ≥ 0; the best is returned. Each problem's
    sites must offer the full starting stock; `stock[(sku, site)]` caps the sum; every unit not
    shipped costs `backorder_penalty`. `counts[i]` says how many orders like problem i there are
    (1 each by default; expected counts when the problems are a forecast). `columns` (per
    problem, from an earlier result's `.columns`) warm-starts the master. `node_limit` caps each
    pricing search (faster, for prices only): the bound stays valid but weaker, and the column
    generation is not reported as converged.
    """
    weighted = [
        (_uniform(p, backorder_penalty), 1.0 if counts is None else counts[i], i)
        for i, p in enumerate(problems)
    ]
    weighted = [(p, n, i) for p, n, i in weighted if p.units and n > 0]
    seeds = None if columns is None else [columns[i] for _, _, i in weighted]
    master = _Master(
        [p for p, _, _ in weighted], stock, [n for _, n, _ in weighted], seeds, node_limit
    )
    return master.run(max_rounds)


def joint_plans(
    problems: Sequence[Problem],
    stock: Mapping[tuple[str, str], int],
    current: Sequence[Mapping[str, Mapping[str, int]]],
    *,
    max_rounds: int = 5,
    time_limit: float | None = None,
) -> list[dict[str, dict[str, int]]]:
    """Re-plan several orders together within the shared stock (a wave): column generation from
    the current plans, then the best whole plan per order as one MILP over the columns found.
    With `time_limit`, each of the two gets that many seconds: the columns found by then, and
    the best plans the MILP found by then.
    Each problem keeps its own weights and opportunity costs; the current plans must fit the
    stock together, so the answer never costs more than they do."""
    columns = [[(objective(p, c), _use(c))] for p, c in zip(problems, current, strict=True)]
    master = _Master(problems, stock, [1.0] * len(problems), columns)
    master.run(max_rounds, seconds=time_limit)
    chosen = master.integer_plans(time_limit)
    if chosen is None:  # out of time with nothing better: the current plans stand
        return [{k: dict(v) for k, v in c.items()} for c in current]
    out: list[dict[str, dict[str, int]]] = []
    for use in chosen:
        taken: dict[str, dict[str, int]] = {}
        for (site, k), q in use.items():
            taken.setdefault(site, {})[k] = q
        out.append(taken)
    return out


def demand_persistence(window: Sequence[Mapping[str, int]], min_evidence: int = 100) -> float:
    """How far a SKU's past demand predicts its future demand, from a window of orders' units
    (oldest first): the least-squares slope of each SKU's units in the newer half on its units
    in the older half (through the origin, clipped to 0..1). Near 1 for steady sellers; near 0
    where most products sell once and are gone (as on a marketplace), so that a sale seen once
    is not taken for demand still to come. Below `min_evidence` orders there is too little to
    tell, and past demand is taken at face value (1)."""
    if len(window) < min_evidence:
        return 1.0
    half = len(window) // 2
    older: Counter[str] = Counter()
    newer: Counter[str] = Counter()
    for units in window[:half]:
        older.update(units)
    for units in window[half:]:
        newer.update(units)
    denominator = sum(n * n for n in older.values())
    if denominator == 0:
        return 0.0
    slope = sum(n * newer.get(k, 0) for k, n in older.items()) / denominator
    return max(0.0, min(1.0, slope))
