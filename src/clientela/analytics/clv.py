"""Customer lifetime value: BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma spend.

Pure functions on NumPy arrays, vectorised over customers. Time is counted in whole calendar
days (purchases on the same day merge into one, their values summed) and given in `unit`:
"days", or "weeks" = days / 7 as in the published CDNOW analyses. Money stays in the unit the
purchase values came in (the shop's minor units).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, TypedDict, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from clientela.core.errors import ClientelaError, InvalidInput

Unit = Literal["days", "weeks"]
Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
AsOf = np.datetime64 | date | str

DAYS_PER_UNIT: dict[str, int] = {"days": 1, "weeks": 7}
# lifetimes' customer_lifetime_value counts a month as 30 days or 4.345 weeks; the same
# constants keep our values comparable with it.
UNITS_PER_MONTH: dict[str, float] = {"days": 30.0, "weeks": 4.345}
# Log-parameters stay inside ±30 (e^30 ≈ 1e13): a fit that ends on that wall has no finite
# maximum (for instance when nobody ever bought twice) and is refused.
_LOG_BOUND = 30.0


class ModelDidNotConverge(ClientelaError):
    """The likelihood has no finite maximum for these customers, or the search failed."""

    status = 422
    code = "model_did_not_converge"


@dataclass(frozen=True, eq=False)
class Summary:
    """Per customer: repeat purchase days (frequency, x), the age at the last purchase
    (recency, t_x), the age at the end of observation (age, T) and the mean value of the
    repeat purchases (monetary; 0 for one-time buyers). Ages count from the first purchase."""

    customer: Ints
    frequency: Ints
    recency: Floats
    age: Floats
    monetary: Floats
    unit: Unit

    def __post_init__(self) -> None:
        _check_unit(self.unit)
        for name, kind in (("customer", np.int64), ("frequency", np.int64),
                           ("recency", np.float64), ("age", np.float64),
                           ("monetary", np.float64)):
            object.__setattr__(self, name, _column(name, getattr(self, name), kind))
        if len({len(self.customer), len(self.frequency), len(self.recency), len(self.age),
                len(self.monetary)}) != 1:
            raise InvalidInput("summary: every column must have one value per customer")
        _check_histories(self)

    def __len__(self) -> int:
        return len(self.customer)


def _column(name: str, values: ArrayLike, kind: type[np.generic]) -> NDArray[np.generic]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInput(f"{name}: must be a one-dimensional array")
    converted = array.astype(kind)
    if not np.all(np.isfinite(converted)) or np.any(converted != array):
        raise InvalidInput(f"{name}: must hold finite {np.dtype(kind).name} values")
    return converted


def _check_histories(summary: Summary) -> None:
    if np.any(summary.frequency < 0):
        raise InvalidInput("frequency: must be 0 or more")
    if np.any(summary.recency < 0) or np.any(summary.recency > summary.age):
        raise InvalidInput("recency: must lie between 0 and the customer's age")
    if np.any(summary.recency[summary.frequency == 0] != 0):
        raise InvalidInput("recency: must be 0 for customers without a repeat purchase")
    if np.any(summary.monetary < 0):
        raise InvalidInput("monetary: must be 0 or more")


def _check_unit(unit: str) -> None:
    if unit not in get_args(Unit):
        raise InvalidInput(f"unit: must be one of {', '.join(get_args(Unit))}, not {unit!r}")


def summarize(customer: ArrayLike, placed_at: ArrayLike, value: ArrayLike, *, as_of: AsOf,
              unit: Unit) -> Summary:
    """One row per customer who bought on or before `as_of`, from their purchases up to the
    end of that day; purchases on one calendar day of `placed_at` (naive, shop time) count
    as one, values summed. Sorted by customer. The same figures as lifetimes'
    summary_data_from_transaction_data with freq "D" (weeks: freq_multiplier 7)."""
    _check_unit(unit)
    ids, days, amounts = _purchases(customer, placed_at, value)
    end = _as_day(as_of)
    kept = days <= end
    if not kept.any():
        raise InvalidInput(f"as_of: no purchase on or before {end}")
    ids, days, amounts = ids[kept], days[kept], amounts[kept]
    order = _by_customer_and_day(ids, days)
    ids, days, amounts = ids[order], days[order], amounts[order]
    starts = np.flatnonzero(_starts(ids) | _starts(days))
    ids, days, amounts = ids[starts], days[starts], np.add.reduceat(amounts, starts)
    firsts = np.flatnonzero(_starts(ids))
    lasts = np.append(firsts[1:], len(ids)) - 1
    frequency = np.diff(np.append(firsts, len(ids))) - 1
    repeat_value = np.add.reduceat(amounts, firsts) - amounts[firsts]
    per = DAYS_PER_UNIT[unit]
    return Summary(
        customer=ids[firsts], frequency=frequency,
        recency=(days[lasts] - days[firsts]).astype(np.int64) / per,
        age=(end - days[firsts]).astype(np.int64) / per,
        monetary=np.divide(repeat_value, frequency, out=np.zeros(len(firsts)),
                           where=frequency > 0),
        unit=unit)


def _purchases(customer: ArrayLike, placed_at: ArrayLike,
               value: ArrayLike) -> tuple[Ints, NDArray[np.datetime64], NDArray[np.generic]]:
    ids, when, amounts = np.asarray(customer), np.asarray(placed_at), np.asarray(value)
    if not (ids.ndim == when.ndim == amounts.ndim == 1 and len(ids) == len(when) == len(amounts)):
        raise InvalidInput("purchases: customer, placed_at and value must be 1-D and equally long")
    if ids.dtype.kind not in "iu":
        raise InvalidInput("customer: must be an integer array")
    if when.dtype.kind != "M" or np.any(np.isnat(when)):
        raise InvalidInput("placed_at: must be a datetime64 array without NaT")
    if amounts.dtype.kind not in "iuf" or not np.all(np.isfinite(amounts)) or np.any(amounts < 0):
        raise InvalidInput("value: must be finite amounts of 0 or more")
    kind = np.int64 if amounts.dtype.kind in "iu" else np.float64
    return ids.astype(np.int64), when.astype("datetime64[D]"), amounts.astype(kind)


def _by_customer_and_day(ids: Ints, days: NDArray[np.datetime64]) -> NDArray[np.intp]:
    """The order that sorts purchases by customer, then day: by one 64-bit key when the
    ranges allow (about twice as fast as lexsort), else by lexsort."""
    day = days.astype(np.int64) - days.min().astype(np.int64)
    span = int(day.max()) + 1
    if int(ids.max()) - int(ids.min()) < np.iinfo(np.int64).max // span:
        return np.argsort((ids - ids.min()) * span + day)
    return np.lexsort((day, ids))


def _as_day(as_of: AsOf) -> np.datetime64:
    if isinstance(as_of, datetime) and as_of.tzinfo is not None:
        raise InvalidInput("as_of: give a naive date or time in the shop's own time zone")
    try:
        day: np.datetime64 = np.datetime64(as_of).astype("datetime64[D]")
    except ValueError as error:
        raise InvalidInput(f"as_of: not a date: {as_of!r}") from error
    return day


def _starts(sorted_values: NDArray[np.generic]) -> NDArray[np.bool_]:
    """True where a run of equal values begins."""
    begins = np.ones(len(sorted_values), dtype=bool)
    begins[1:] = sorted_values[1:] != sorted_values[:-1]
    return begins


# --- BG/NBD ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BgNbd:
    """A fitted BG/NBD model; `alpha` is in `unit`, `log_likelihood` is the total."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    unit: Unit


@dataclass(frozen=True, eq=False)
class _Histories:
    """The likelihood's inputs, prepared once: counts per distinct frequency, the ages of
    one-time buyers, and the repeat buyers' histories."""

    levels: Floats
    counts: Floats
    once_age: Floats
    x: Floats
    recency: Floats
    age: Floats


def _histories(summary: Summary, scale: float) -> _Histories:
    levels, counts = np.unique(summary.frequency, return_counts=True)
    repeat = summary.frequency > 0
    return _Histories(levels=levels.astype(np.float64), counts=counts.astype(np.float64),
                      once_age=summary.age[~repeat] * scale,
                      x=summary.frequency[repeat].astype(np.float64),
                      recency=summary.recency[repeat] * scale, age=summary.age[repeat] * scale)


def _dot(left: Floats, right: Floats) -> float:
    """Σ left·right without BLAS, whose threads cost milliseconds on a busy shared machine."""
    return float(np.sum(left * right))


def _bgnbd_shared(params: Floats, h: _Histories) -> tuple[float, Floats]:
    """The terms that depend on x alone, summed per distinct x:
    log Γ(r+x)·α^r / Γ(r) and log B(a, b+x) / B(a, b)."""
    r, alpha, a, b = params
    k, n, total = h.levels, h.counts, float(h.counts.sum())
    ll = _dot(n, gammaln(r + k) - gammaln(r) + gammaln(a + b) + gammaln(b + k) - gammaln(b)
              - gammaln(a + b + k)) + total * r * np.log(alpha)
    grad = np.array([_dot(n, digamma(r + k) - digamma(r)) + total * np.log(alpha),
                     total * r / alpha,
                     _dot(n, digamma(a + b) - digamma(a + b + k)),
                     _dot(n, digamma(a + b) + digamma(b + k) - digamma(b) - digamma(a + b + k))])
    return float(ll), grad


def _bgnbd_once(params: Floats, h: _Histories) -> tuple[float, Floats]:
    """One-time buyers: alive for sure, and no purchase in (0, T]."""
    r, alpha = params[0], params[1]
    log_age = np.log(alpha + h.once_age)
    return (float(-r * log_age.sum()),
            np.array([-log_age.sum(), -r * np.sum(1.0 / (alpha + h.once_age)), 0.0, 0.0]))


def _bgnbd_repeat(params: Floats, h: _Histories) -> tuple[float, Floats]:
    """Repeat buyers: silent since t_x while alive, or gone right after the last purchase;
    the two are added in log space (log(1 + e^gone) stays finite for any ages)."""
    r, alpha, a, b = params
    rx = r + h.x
    log_age, log_recency = np.log(alpha + h.age), np.log(alpha + h.recency)
    gone = np.log(a) - np.log(b + h.x - 1) - rx * (log_recency - log_age)
    weight = expit(gone)
    ll = np.sum(np.logaddexp(0.0, gone) - rx * log_age)
    grad = np.array([-np.sum(log_age + weight * (log_recency - log_age)),
                     -np.sum(rx * ((1 - weight) / (alpha + h.age) + weight / (alpha + h.recency))),
                     weight.sum() / a,
                     -np.sum(weight / (b + h.x - 1))])
    return float(ll), grad


def _bgnbd_log_likelihood(params: Floats, h: _Histories) -> tuple[float, Floats]:
    """Total log-likelihood of (r, alpha, a, b) and its gradient."""
    parts = [term(params, h) for term in (_bgnbd_shared, _bgnbd_once, _bgnbd_repeat)]
    return sum(ll for ll, _ in parts), np.sum([grad for _, grad in parts], axis=0)


def fit_bgnbd(summary: Summary) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters for these customers."""
    repeat_days = int(summary.frequency.sum())
    if repeat_days == 0:
        raise InvalidInput("summary: BG/NBD needs at least one customer with a repeat purchase")
    oldest = float(summary.age.max())
    if oldest <= 0:
        raise InvalidInput("summary: BG/NBD needs customers older than 0")
    # Time is scaled so that the oldest customer is 1 old: every parameter then starts near 1.
    scale = 1.0 / oldest
    histories = _histories(summary, scale)
    params, ll = _maximise(lambda p: _bgnbd_log_likelihood(p, histories), 4, len(summary))
    # A density in time scaled by s is 1/s per repeat purchase higher than in `unit`.
    return BgNbd(r=params[0], alpha=params[1] / scale, a=params[2], b=params[3],
                 log_likelihood=ll + repeat_days * float(np.log(scale)), customers=len(summary),
                 unit=summary.unit)


def _maximise(log_likelihood: Callable[[Floats], tuple[float, Floats]], size: int,
              customers: int) -> tuple[list[float], float]:
    """Maximise over log-parameters with L-BFGS-B and the analytic gradient (mean per customer,
    so that the tolerances mean the same for any number of customers)."""
    def objective(log_params: Floats) -> tuple[float, Floats]:
        params = np.exp(log_params)
        ll, grad = log_likelihood(params)
        return -ll / customers, -grad * params / customers

    found = minimize(objective, np.zeros(size), jac=True, method="L-BFGS-B",
                     bounds=[(-_LOG_BOUND, _LOG_BOUND)] * size,
                     options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000})
    if not np.all(np.isfinite(found.x)) or np.any(np.abs(found.x) >= _LOG_BOUND - 1e-6):
        raise ModelDidNotConverge(f"the likelihood has no finite maximum here: {found.message}")
    if not found.success and np.max(np.abs(found.jac)) > 1e-6:
        raise ModelDidNotConverge(f"the search for the maximum failed: {found.message}")
    params = np.exp(found.x)
    return [float(value) for value in params], float(log_likelihood(params)[0])


def _gone_log_odds(model: BgNbd, summary: Summary) -> Floats:
    """log P(gone)/P(alive) per customer; -inf for one-time buyers, who cannot have left."""
    _check_same_unit(model.unit, summary.unit)
    x = summary.frequency
    odds = np.log(model.a / (model.b + np.maximum(x, 1) - 1)) + (model.r + x) * np.log1p(
        (summary.age - summary.recency) / (model.alpha + summary.recency))
    return np.where(x > 0, odds, -np.inf)


def _check_same_unit(model: str, summary: str) -> None:
    if model != summary:
        raise InvalidInput(f"unit: the model counts time in {model}, the summary in {summary}")


def probability_alive(model: BgNbd, summary: Summary) -> Floats:
    """P(alive) per customer at the end of observation (Fader, Hardie & Lee 2008 note)."""
    return np.asarray(expit(-_gone_log_odds(model, summary)), dtype=np.float64)


def churn_risk(model: BgNbd, summary: Summary) -> Floats:
    """1 - P(alive) per customer, computed without cancellation."""
    return np.asarray(expit(_gone_log_odds(model, summary)), dtype=np.float64)


def expected_purchases(model: BgNbd, t: ArrayLike, summary: Summary) -> Floats:
    """Expected purchases per customer in the next `t` units (FHL 2005, equation 10)."""
    horizon = np.asarray(t, dtype=np.float64)
    if np.any(horizon < 0) or not np.all(np.isfinite(horizon)):
        raise InvalidInput("t: must be a finite time of 0 or more")
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    x = summary.frequency
    z = horizon / (alpha + summary.age + horizon)
    # (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z) after Euler's transformation: the series then
    # has small parameters and converges fast even for large x.
    shrink = (a - 1) * np.log1p(-z)
    hyper = np.asarray(hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z), dtype=np.float64)
    log_hyper = np.log(hyper, out=np.zeros_like(hyper), where=hyper > 0)
    # 1 - (1-z)^(a-1)·2F1, through expm1 so that short horizons keep their digits; 2F1 can
    # only be 0 or less when a + b + x < 1.
    fading = np.where(hyper > 0, -np.expm1(shrink + log_hyper), 1 - np.exp(shrink) * hyper)
    bought = (a + b + x - 1) / (a - 1) * fading
    return np.asarray(bought * probability_alive(model, summary), dtype=np.float64)


# --- Gamma-Gamma ----------------------------------------------------------------------


@dataclass(frozen=True)
class GammaGamma:
    """A fitted Gamma-Gamma spend model; `gamma` is in the summary's money unit."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int


@dataclass(frozen=True, eq=False)
class _Spends:
    levels: Floats
    counts: Floats
    x: Floats
    spend: Floats
    constant_p: float  # Σ x·log(m) + Σ x·log(x), the part of the likelihood linear in p
    log_spend: float  # Σ log(m)


def _spends(summary: Summary, scale: float) -> _Spends:
    buyers = (summary.frequency > 0) & (summary.monetary > 0)
    x, spend = summary.frequency[buyers].astype(np.float64), summary.monetary[buyers] * scale
    levels, counts = np.unique(x, return_counts=True)
    return _Spends(levels=levels, counts=counts.astype(np.float64), x=x, spend=spend,
                   constant_p=_dot(x, np.log(spend) + np.log(x)),
                   log_spend=float(np.log(spend).sum()))


def _gg_log_likelihood(params: Floats, s: _Spends) -> tuple[float, Floats]:
    """Total log-likelihood of (p, q, gamma) for the mean repeat spends, and its gradient."""
    p, q, g = params
    k, n, total = s.levels, s.counts, float(s.counts.sum())
    log_sum = np.log(s.x * s.spend + g)
    shape = p * s.x + q
    ll = (_dot(n, gammaln(p * k + q) - gammaln(p * k)) - total * gammaln(q)
          + total * q * np.log(g) + p * s.constant_p - s.log_spend - _dot(shape, log_sum))
    grad = np.array([_dot(n, k * (digamma(p * k + q) - digamma(p * k))) + s.constant_p
                     - _dot(s.x, log_sum),
                     _dot(n, digamma(p * k + q)) - total * digamma(q) + total * np.log(g)
                     - log_sum.sum(),
                     total * q / g - np.sum(shape / (s.x * s.spend + g))])
    return float(ll), grad


def fit_gamma_gamma(summary: Summary) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters on the repeat buyers with a positive spend."""
    buyers = (summary.frequency > 0) & (summary.monetary > 0)
    count = int(buyers.sum())
    if count == 0:
        raise InvalidInput("summary: Gamma-Gamma needs at least one repeat buyer who spent")
    scale = 1.0 / float(summary.monetary[buyers].mean())  # spends near 1 while searching
    spends = _spends(summary, scale)
    params, ll = _maximise(lambda p: _gg_log_likelihood(p, spends), 3, count)
    # A density of money scaled by c is 1/c per customer higher than in the summary's unit.
    return GammaGamma(p=params[0], q=params[1], gamma=params[2] / scale,
                      log_likelihood=ll + count * float(np.log(scale)), customers=count)


def expected_spend(model: GammaGamma, summary: Summary) -> Floats:
    """Expected mean purchase value per customer (Fader, Hardie & Lee 2005b, equation 5)."""
    if model.q <= 1:
        raise InvalidInput("gamma_gamma.q: must be above 1 for a finite mean spend")
    population = model.p * model.gamma / (model.q - 1)
    weight = model.p * summary.frequency / (model.p * summary.frequency + model.q - 1)
    return np.asarray((1 - weight) * population + weight * summary.monetary, dtype=np.float64)


def lifetime_value(bgnbd: BgNbd, gg: GammaGamma, summary: Summary, *, horizon_months: int = 12,
                   monthly_discount_rate: float = 0.01, unit: Unit | None = None) -> Floats:
    """Discounted expected value of each customer's purchases over the next months: expected
    purchases month by month times expected spend, as lifetimes' customer_lifetime_value.
    `unit` defaults to (and must equal) the summary's."""
    if unit is not None:
        _check_unit(unit)
        _check_same_unit(unit, summary.unit)
    if horizon_months < 0:
        raise InvalidInput("horizon_months: must be 0 or more")
    if not monthly_discount_rate > -1:
        raise InvalidInput("monthly_discount_rate: must be above -1")
    spend, month = expected_spend(gg, summary), UNITS_PER_MONTH[summary.unit]
    value, before = np.zeros(len(summary)), np.zeros(len(summary))
    for step in range(1, horizon_months + 1):  # months, not customers
        upto = expected_purchases(bgnbd, step * month, summary)
        value += spend * (upto - before) / (1 + monthly_discount_rate) ** step
        before = upto
    return value


def inactive(model: BgNbd, summary: Summary, *, silence_multiple: float = 3.0,
             alive_below: float = 0.5, population_rhythm: float | None = None) -> NDArray[np.bool_]:
    """Customers silent for long by their own rhythm.

    Silence is the time since the last purchase (T - t_x). A repeat buyer's rhythm is their
    mean gap between purchase days, t_x / x; they are inactive when the silence exceeds
    `silence_multiple` times that rhythm and the model agrees, P(alive) < `alive_below`. A
    one-time buyer has no rhythm of their own and, under BG/NBD, P(alive) = 1 (nobody can
    leave before a repeat purchase), so they are judged on silence alone against the
    population's rhythm: `population_rhythm`, by default the median rhythm of this summary's
    repeat buyers.
    """
    x = summary.frequency
    repeat = x > 0
    own = np.divide(summary.recency, x, out=np.zeros(len(summary)), where=repeat)
    if population_rhythm is None:
        if not repeat.any():
            raise InvalidInput("population_rhythm: no repeat buyer to learn it from; give it")
        population_rhythm = float(np.median(own[repeat]))
    rhythm = np.where(repeat, own, population_rhythm)
    silent = summary.age - summary.recency > silence_multiple * rhythm
    return silent & (~repeat | (probability_alive(model, summary) < alive_below))


class ClvFigures(TypedDict):
    """The fitted figures as `clientela` prints them (JSON)."""

    r: float
    alpha: float
    a: float
    b: float
    p: float
    q: float
    gamma: float
    bgnbd_log_likelihood: float
    gg_log_likelihood: float
    customers: int
    repeat_buyers: int


def figures(bgnbd: BgNbd, gg: GammaGamma) -> ClvFigures:
    """Both models' parameters and fit in one JSON-ready mapping."""
    return ClvFigures(r=bgnbd.r, alpha=bgnbd.alpha, a=bgnbd.a, b=bgnbd.b, p=gg.p, q=gg.q,
                      gamma=gg.gamma, bgnbd_log_likelihood=bgnbd.log_likelihood,
                      gg_log_likelihood=gg.log_likelihood, customers=bgnbd.customers,
                      repeat_buyers=gg.customers)
