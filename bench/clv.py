"""CLV model fitting (`clientela.analytics.clv`) next to lifetimes, on the same customers.

What is measured
----------------
1. A summary of `--customers` customers (default 1,000,000) drawn with NumPy from the models
   themselves, with the CDNOW parameters (r 0.243, alpha 4.414 weeks, a 0.793, b 2.426;
   p 6.25, q 3.74, gamma 1,544 cents): each customer's first purchase falls uniformly in
   the first 12 weeks of a 39-week window (T from 27 to 39 weeks), purchases follow a
   Poisson process at a gamma-distributed rate, and after each repeat purchase the customer
   leaves with a beta-distributed probability; the mean repeat spend is gamma-gamma. Repeat
   purchase times are exact order statistics, so frequency, recency and T are the ones a
   continuous-time history gives. It is built before any clock starts.

2. Ours: `fit_bgnbd(summary)` then `fit_gamma_gamma(summary)` (the Gamma-Gamma on the repeat
   buyers with a positive spend): maximum likelihood with the analytic gradient.

3. The baseline, in the same run, on the same arrays: `lifetimes.BetaGeoFitter().fit(
   frequency, recency, T)` then `lifetimes.GammaGammaFitter().fit(frequency, monetary)` on
   the same repeat buyers. lifetimes' `fit` also computes the Hessian (for standard errors),
   which ours does not; `baseline.hessian_seconds` times that part on its own afterwards
   (lifetimes' own autograd Hessian of its own objective at its optimum) so that the cost of
   the search alone can be told apart.

Each side runs `--repeat` times (default 3), in turn, in one process; `seconds` is the
best wall time of each, `ratio` is lifetimes' seconds / ours, and `ratio_without_hessian`
takes lifetimes' Hessian time off its side first. Both must find the same parameters: exit
status 1 if any differs by more than 1 %. One JSON object goes to stdout, progress to stderr.

    .venv/bin/python bench/clv.py [--customers N] [--seed S] [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import lifetimes
import numpy as np
from autograd import hessian

from clientela.analytics.clv import BgNbd, GammaGamma, Summary, fit_bgnbd, fit_gamma_gamma

TRUE = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74,
        "gamma": 1544.0}
WINDOW_WEEKS, COHORT_WEEKS = 39.0, 12.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def simulate(customers: int, seed: int) -> Summary:
    """Customers drawn from BG/NBD and Gamma-Gamma with the CDNOW parameters."""
    rng = np.random.default_rng(seed)
    age = WINDOW_WEEKS - rng.uniform(0.0, COHORT_WEEKS, customers)
    rate = rng.gamma(TRUE["r"], 1.0 / TRUE["alpha"], customers)
    leaving = rng.beta(TRUE["a"], TRUE["b"], customers)
    happened = rng.poisson(rate * age)  # purchases a customer who never left would make
    frequency = np.minimum(rng.geometric(leaving), happened)
    repeat = frequency > 0
    recency = np.zeros(customers)
    # The x-th of n uniform purchase times in (0, T] is T·Beta(x, n - x + 1).
    recency[repeat] = age[repeat] * rng.beta(frequency[repeat],
                                             happened[repeat] - frequency[repeat] + 1)
    spend_rate = rng.gamma(TRUE["q"], 1.0 / TRUE["gamma"], customers)
    monetary = np.zeros(customers)
    monetary[repeat] = rng.gamma(TRUE["p"] * frequency[repeat],
                                 1.0 / (frequency[repeat] * spend_rate[repeat]))
    return Summary(customer=np.arange(customers), frequency=frequency, recency=recency,
                   age=age, monetary=monetary, unit="weeks")


def timed(work: Callable[[], Any], repeat: int = 1) -> tuple[Any, float]:
    """What `work` returns, and its best wall time over `repeat` runs."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        done = work()
        best = min(best, time.perf_counter() - started)
    return done, best


def ours(summary: Summary) -> tuple[BgNbd, GammaGamma]:
    return fit_bgnbd(summary), fit_gamma_gamma(summary)


def theirs(summary: Summary) -> tuple[Any, Any]:
    repeat = (summary.frequency > 0) & (summary.monetary > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = lifetimes.BetaGeoFitter().fit(summary.frequency, summary.recency, summary.age)
        ggf = lifetimes.GammaGammaFitter().fit(summary.frequency[repeat],
                                               summary.monetary[repeat])
    return bgf, ggf


def hessian_seconds(summary: Summary, bgf: Any, ggf: Any) -> float:
    """lifetimes' own Hessian computations inside `fit`, repeated at its optimum."""
    scale = 1.0 / summary.age.max()
    bg_log = np.log(bgf.params_[["r", "alpha", "a", "b"]].to_numpy() * [1, scale, 1, 1])
    repeat = (summary.frequency > 0) & (summary.monetary > 0)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hessian(lifetimes.BetaGeoFitter._negative_log_likelihood)(
            bg_log, summary.frequency, summary.recency * scale, summary.age * scale,
            np.ones(len(summary), dtype=int), 0.0)
        hessian(lifetimes.GammaGammaFitter._negative_log_likelihood)(
            np.log(ggf.params_[["p", "q", "v"]].to_numpy()),
            summary.frequency[repeat].astype(float), summary.monetary[repeat],
            np.ones(int(repeat.sum()), dtype=int), 0.0)
    return time.perf_counter() - started


def parameters(bgnbd: BgNbd, gg: GammaGamma) -> dict[str, float]:
    return {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b, "p": gg.p,
            "q": gg.q, "gamma": gg.gamma}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000, help="Customers to fit.")
    parser.add_argument("--seed", type=int, default=7, help="Random seed for the customers.")
    parser.add_argument("--repeat", type=int, default=3,
                        help="Runs of each side; the best wall time of each is reported.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    summary, seconds = timed(lambda: simulate(args.customers, args.seed))
    repeat_buyers = int(((summary.frequency > 0) & (summary.monetary > 0)).sum())
    log(f"simulated {len(summary)} customers ({repeat_buyers} repeat buyers) in {seconds:.1f}s")
    (bgnbd, gg), our_seconds = timed(lambda: ours(summary), args.repeat)
    log(f"ours: {our_seconds:.2f}s (best of {args.repeat})")
    (bgf, ggf), their_seconds = timed(lambda: theirs(summary), args.repeat)
    log(f"lifetimes: {their_seconds:.2f}s (best of {args.repeat})")
    hessians = hessian_seconds(summary, bgf, ggf)
    log(f"lifetimes' Hessians alone: {hessians:.2f}s")
    found = parameters(bgnbd, gg)
    baseline = {**{name: float(bgf.params_[name]) for name in ("r", "alpha", "a", "b")},
                **{name: float(ggf.params_[name]) for name in ("p", "q")},
                "gamma": float(ggf.params_["v"])}
    differences = {name: abs(found[name] / baseline[name] - 1) for name in found}
    agree = max(differences.values()) <= 0.01
    print(json.dumps({
        "benchmark": "clv_fit",
        "customers": len(summary),
        "repeat": args.repeat,
        "repeat_buyers": repeat_buyers,
        "simulated_from": TRUE,
        "seconds": round(our_seconds, 3),
        "parameters": found,
        "log_likelihood": {"bgnbd": bgnbd.log_likelihood, "gamma_gamma": gg.log_likelihood},
        "baseline": {"what": "lifetimes 0.11.3 BetaGeoFitter().fit + GammaGammaFitter().fit "
                             "on the same arrays (its fit includes the autograd Hessian)",
                     "seconds": round(their_seconds, 3),
                     "hessian_seconds": round(hessians, 3),
                     "parameters": baseline},
        "ratio": round(their_seconds / our_seconds, 2),
        "ratio_without_hessian": round((their_seconds - hessians) / our_seconds, 2),
        "largest_relative_difference": max(differences.values()),
        "parameters_agree": agree,
    }), flush=True)
    if not agree:
        log(f"parameters differ by more than 1%: {differences}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
