"""BG/NBD and Gamma-Gamma on the CDNOW sample: the published figures, and lifetimes itself."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import lifetimes
import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import summary_data_from_transaction_data
from scipy.integrate import quad
from scipy.special import betaln

from clientela.analytics import clv
from clientela.core.errors import InvalidInput

CALIBRATION_END = "1997-09-30"


def _dataset(name: str) -> str:
    return str(files("lifetimes") / "datasets" / name)


@cache
def _purchases() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CDNOW_sample.txt: customer id, sample id (1-2357), date YYYYMMDD, CDs, dollars."""
    _customer, sample_id, yyyymmdd, _cds, dollars = np.loadtxt(_dataset("CDNOW_sample.txt")).T
    stamp = yyyymmdd.astype(np.int64)
    months = (stamp // 10000 - 1970).astype("datetime64[Y]").astype("datetime64[M]") \
        + (stamp // 100 % 100 - 1)
    days = months.astype("datetime64[D]") + (stamp % 100 - 1)
    return sample_id.astype(np.int64), days, np.rint(dollars * 100).astype(np.int64), dollars


@cache
def _calibration(unit: clv.Unit = "weeks") -> clv.Summary:
    customer, days, cents, _dollars = _purchases()
    return clv.summarize(customer, days, cents, as_of=CALIBRATION_END, unit=unit)


@cache
def _fits() -> tuple[clv.BgNbd, clv.GammaGamma]:
    return clv.fit_bgnbd(_calibration()), clv.fit_gamma_gamma(_calibration())


def _published(value: float, expected: float) -> None:
    assert abs(value - expected) <= 0.005 * abs(expected), (value, expected)


def test_the_calibration_summary_is_the_published_one():
    summary = _calibration()
    assert (len(summary), int((summary.frequency > 0).sum())) == (2357, 946)
    # Both shipped files hold the calibration period (to 1997-09-30), rounded to 2 decimals,
    # one row per sample id in order; weeks are days / 7, so the days come back exactly.
    plain = pd.read_csv(_dataset("cdnow_customers_summary.csv"))
    spend = pd.read_csv(_dataset("cdnow_customers_summary_with_transactions.csv"))
    assert summary.customer.tolist() == plain["ID"].tolist() == list(range(1, 2358))
    assert summary.frequency.tolist() == plain["frequency"].tolist() == spend["x"].tolist()
    days = np.rint(summary.recency * 7).astype(np.int64)
    assert days.tolist() == np.rint(plain["recency"] * 7).astype(np.int64).tolist()
    assert days.tolist() == np.rint(spend["t_x"] * 7).astype(np.int64).tolist()
    assert np.rint(summary.age * 7).tolist() == np.rint(plain["T"] * 7).tolist()
    # zbar is the mean repeat spend in dollars, rounded half up to the cent.
    assert np.floor(summary.monetary + 0.5).tolist() == np.rint(spend["zbar"] * 100).tolist()
    # Customer 1 (00004): 1997-01-01 $29.33, 01-18 $29.73, 08-02 $14.96 (12-12 is later).
    assert (summary.frequency[0], summary.recency[0], summary.age[0], summary.monetary[0]) == (
        2, 213 / 7, 272 / 7, (2973 + 1496) / 2)


def test_the_summary_equals_lifetimes_own():
    customer, days, _cents, dollars = _purchases()
    theirs = summary_data_from_transaction_data(
        pd.DataFrame({"id": customer, "date": days, "value": dollars}), "id", "date", "value",
        observation_period_end=CALIBRATION_END, freq="D", freq_multiplier=7).sort_index()
    ours = _calibration()
    assert ours.customer.tolist() == theirs.index.tolist()
    assert ours.frequency.tolist() == theirs["frequency"].tolist()
    assert ours.recency.tolist() == theirs["recency"].tolist()
    assert ours.age.tolist() == theirs["T"].tolist()
    np.testing.assert_allclose(ours.monetary / 100, theirs["monetary_value"], rtol=1e-12)


def test_bgnbd_gives_the_published_parameters():
    model, _ = _fits()
    for value, expected in ((model.r, 0.243), (model.alpha, 4.414), (model.a, 0.793),
                            (model.b, 2.426)):
        _published(value, expected)
    assert abs(model.log_likelihood - -9582.4) <= 0.5
    assert (model.customers, model.unit) == (2357, "weeks")


def test_gamma_gamma_gives_the_published_parameters():
    _, spend = _fits()
    assert spend.customers == 946
    _published(spend.p, 6.25)
    _published(spend.q, 3.74)
    _published(spend.gamma / 100, 15.44)  # the summary is in cents


def test_the_fits_are_the_maximum_lifetimes_finds():
    summary = _calibration()
    model, spend = _fits()
    bgf = lifetimes.BetaGeoFitter().fit(summary.frequency, summary.recency, summary.age)
    np.testing.assert_allclose([model.r, model.alpha, model.a, model.b],
                               bgf.params_[["r", "alpha", "a", "b"]], rtol=1e-5)
    # lifetimes reports the mean, with time scaled so that the oldest customer is 1 old.
    theirs = -bgf._negative_log_likelihood_ * len(summary) \
        - summary.frequency.sum() * np.log(summary.age.max())
    assert abs(model.log_likelihood - theirs) < 1e-6
    repeat = summary.frequency > 0
    ggf = lifetimes.GammaGammaFitter().fit(summary.frequency[repeat],
                                           summary.monetary[repeat] / 100)
    np.testing.assert_allclose([spend.p, spend.q, spend.gamma / 100],
                               ggf.params_[["p", "q", "v"]], rtol=1e-5)
    # A density of cents is 1/100 of one of dollars, per customer.
    assert abs(spend.log_likelihood - (-ggf._negative_log_likelihood_ * 946
                                       - 946 * np.log(100))) < 1e-6


def _lifetimes_models(model: clv.BgNbd,
                      spend: clv.GammaGamma) -> tuple[lifetimes.BetaGeoFitter,
                                                      lifetimes.GammaGammaFitter]:
    bgf, ggf = lifetimes.BetaGeoFitter(), lifetimes.GammaGammaFitter()
    bgf.params_ = pd.Series({"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b})
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf.params_ = pd.Series({"p": spend.p, "q": spend.q, "v": spend.gamma})
    return bgf, ggf


def test_every_customer_prediction_equals_lifetimes():
    summary = _calibration()
    model, spend = _fits()
    bgf, ggf = _lifetimes_models(model, spend)
    x, t_x, age = summary.frequency, summary.recency, summary.age
    for horizon in (1.0, 39.0, 520.0):
        np.testing.assert_allclose(
            clv.expected_purchases(model, horizon, summary),
            bgf.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, age),
            rtol=1e-6)
    np.testing.assert_allclose(clv.probability_alive(model, summary),
                               bgf.conditional_probability_alive(x, t_x, age), rtol=1e-6)
    np.testing.assert_allclose(clv.churn_risk(model, summary),
                               1 - clv.probability_alive(model, summary), atol=1e-15)
    np.testing.assert_allclose(clv.expected_spend(spend, summary),
                               ggf.conditional_expected_average_profit(x, summary.monetary),
                               rtol=1e-12)
    index = pd.Index(summary.customer)
    theirs = ggf.customer_lifetime_value(
        bgf, pd.Series(x, index=index), pd.Series(t_x, index=index),
        pd.Series(age, index=index), pd.Series(summary.monetary, index=index),
        time=12, discount_rate=0.01, freq="W")
    ours = clv.lifetime_value(model, spend, summary, horizon_months=12,
                              monthly_discount_rate=0.01, unit="weeks")
    np.testing.assert_allclose(ours, theirs.to_numpy(), rtol=1e-6)
    # Customer 1 bought 3 times to 1997-08-02 for $22.35 on average (2 repeat purchases).
    assert ours[0] == pytest.approx(theirs.iloc[0], rel=1e-9)
    assert 0 < ours[0] < ours[np.argmax(summary.frequency)]


def _by_integration(model: clv.BgNbd, x: int, t_x: float, age: float, t: float) -> float:
    """Equation 10 from the model's definition instead of its closed form: given the history
    and being alive, the rate λ is Gamma(r+x, α+T) and the drop-out probability p is
    Beta(a, b+x); they buy (1 - e^(-λpt))/p times in t. Averaged over λ exactly and over p by
    quadrature, times P(alive) (Fader, Hardie & Lee 2005, equation 11)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b

    def given_p(p: float) -> float:
        if p == 0:
            return (r + x) * t / (alpha + age)
        return float(-np.expm1(-(r + x) * np.log1p(p * t / (alpha + age))) / p)

    integral, _ = quad(given_p, 0, 1, weight="alg", wvar=(a - 1, b + x - 1), epsabs=0,
                       epsrel=1e-12, limit=200)
    alive = 1.0 if x == 0 else 1 / (1 + a / (b + x - 1) * ((alpha + age) / (alpha + t_x))
                                    ** (r + x))
    return float(integral / np.exp(betaln(a, b + x)) * alive)


@pytest.mark.parametrize("parameters", [
    (0.243, 4.414, 0.793, 2.426),  # CDNOW
    (2.288, 0.169, 0.203, 0.163),  # a + b < 1: 2F1 turns negative for one-time buyers
    (1.5, 2.0, 3.0, 0.5),
])
def test_expected_purchases_follow_from_the_model_definition(parameters):
    r, alpha, a, b = parameters
    model = clv.BgNbd(r=r, alpha=alpha, a=a, b=b, log_likelihood=0.0, customers=5,
                      unit="weeks")
    histories = [(0, 0.0, 38.86), (2, 30.43, 38.86), (10, 35.0, 38.0), (1, 2.0, 38.0),
                 (0, 0.0, 5.0)]
    x, t_x, age = (np.array(column) for column in zip(*histories, strict=True))
    summary = clv.Summary(customer=np.arange(5), frequency=x, recency=t_x, age=age,
                          monetary=np.zeros(5), unit="weeks")
    for t in (1.0, 39.0, 365.0):
        expected = [_by_integration(model, *history, t) for history in histories]
        np.testing.assert_allclose(clv.expected_purchases(model, t, summary), expected,
                                   rtol=1e-8)


def test_one_time_buyers_are_alive_and_spend_the_population_mean():
    summary = _calibration()
    model, spend = _fits()
    once = summary.frequency == 0
    assert int(once.sum()) == 2357 - 946
    assert np.all(clv.probability_alive(model, summary)[once] == 1.0)
    assert np.all(clv.churn_risk(model, summary)[once] == 0.0)
    mean = spend.p * spend.gamma / (spend.q - 1)
    assert np.all(clv.expected_spend(spend, summary)[once] == mean)
    bought = clv.expected_purchases(model, 39.0, summary)[once]
    assert np.all((bought > 0) & (bought < 1))


def test_time_units_change_alpha_and_the_density_only():
    weeks, days = _fits()[0], clv.fit_bgnbd(_calibration("days"))
    assert days.unit == "days"
    np.testing.assert_allclose([days.r, days.alpha / 7, days.a, days.b],
                               [weeks.r, weeks.alpha, weeks.a, weeks.b], rtol=1e-6)
    repeat_days = int(_calibration().frequency.sum())
    assert days.log_likelihood == pytest.approx(weeks.log_likelihood - repeat_days * np.log(7),
                                                abs=1e-6)


def test_fitting_is_deterministic():
    summary = _calibration()
    assert clv.fit_bgnbd(summary) == clv.fit_bgnbd(summary) == _fits()[0]
    assert clv.fit_gamma_gamma(summary) == _fits()[1]


def test_without_a_discount_the_value_is_spend_times_purchases():
    summary = _calibration()
    model, spend = _fits()
    value = clv.lifetime_value(model, spend, summary, horizon_months=12,
                               monthly_discount_rate=0.0)
    expected = clv.expected_spend(spend, summary) * clv.expected_purchases(
        model, 12 * 4.345, summary)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    assert np.all(clv.lifetime_value(model, spend, summary, horizon_months=0) == 0)


def test_figures_are_json_ready():
    model, spend = _fits()
    shown = clv.figures(model, spend)
    assert sorted(shown) == sorted(["r", "alpha", "a", "b", "p", "q", "gamma",
                                    "bgnbd_log_likelihood", "gg_log_likelihood", "customers",
                                    "repeat_buyers"])
    assert (shown["customers"], shown["repeat_buyers"], shown["r"]) == (2357, 946, model.r)
    assert all(type(value) in (int, float) for value in shown.values())


def _day(text: str) -> np.datetime64:
    return np.datetime64(text, "D")


def test_same_day_purchases_merge_and_later_ones_are_left_out():
    customer = np.array([7, 7, 7, 3, 7, 9, 9])
    placed_at = np.array(["2024-01-01T09:00", "2024-01-01T21:30", "2024-01-08T12:00",
                          "2024-01-05T00:00", "2024-02-01T08:00", "2024-01-15T10:00",
                          "2024-01-15T23:59"], dtype="datetime64[m]")
    value = np.array([1000, 500, 300, 2000, 900, 100, 250])
    summary = clv.summarize(customer, placed_at, value, as_of=_day("2024-01-15"), unit="days")
    assert summary.customer.tolist() == [3, 7, 9]
    assert summary.frequency.tolist() == [0, 1, 0]
    assert summary.recency.tolist() == [0.0, 7.0, 0.0]
    # Customer 9 bought twice on as_of itself: one day of history, age 0.
    assert summary.age.tolist() == [10.0, 14.0, 0.0]
    assert summary.monetary.tolist() == [0.0, 300.0, 0.0]
    weeks = clv.summarize(customer, placed_at, value, as_of="2024-01-15", unit="weeks")
    assert weeks.recency.tolist() == [0.0, 1.0, 0.0]
    assert weeks.age.tolist() == [10 / 7, 2.0, 0.0]


def test_customer_ids_spanning_all_64_bits_sort_the_same_way():
    customer, days, cents, _ = _purchases()
    sign = np.where(customer % 2 == 0, 1, -1)  # ±2357·2^50: too wide for one sort key
    wide = clv.summarize(sign * customer * 2**50, days, cents, as_of=CALIBRATION_END,
                         unit="weeks")
    narrow = _calibration()
    order = np.argsort(np.where(narrow.customer % 2 == 0, 1, -1) * narrow.customer)
    assert wide.customer.tolist() == (np.where(narrow.customer % 2 == 0, 1, -1)
                                      * narrow.customer * 2**50)[order].tolist()
    for column in ("frequency", "recency", "age", "monetary"):
        assert getattr(wide, column).tolist() == getattr(narrow, column)[order].tolist()


def test_a_customer_with_one_day_of_history_gets_finite_predictions():
    model, spend = _fits()
    summary = clv.summarize(np.array([1, 2, 2]), np.array(["1997-09-30", "1997-09-29",
                                                           "1997-09-30"], dtype="datetime64[D]"),
                            np.array([1500, 1000, 2000]), as_of="1997-09-30", unit="weeks")
    assert summary.frequency.tolist() == [0, 1]
    assert summary.age.tolist() == [0.0, 1 / 7]
    with np.errstate(all="raise"):
        values = clv.lifetime_value(model, spend, summary)
        alive = clv.probability_alive(model, summary)
    assert np.all(np.isfinite(values) & (values > 0))
    assert alive[0] == 1.0 and 0 < alive[1] < 1


def test_huge_ages_and_frequencies_stay_finite():
    model, spend = _fits()
    summary = clv.Summary(customer=np.arange(5), frequency=np.array([0, 3, 500, 1, 100_000]),
                          recency=np.array([0.0, 1e9, 520.0, 1.0, 1e6]),
                          age=np.array([1e12, 1e12, 521.0, 1e12, 1e6]),
                          monetary=np.array([0.0, 2000.0, 1500.0, 100.0, 10.0]), unit="weeks")
    with np.errstate(all="raise"):
        bought = clv.expected_purchases(model, 52.0, summary)
        alive = clv.probability_alive(model, summary)
        risk = clv.churn_risk(model, summary)
        values = clv.lifetime_value(model, spend, summary)
    assert np.all(np.isfinite(bought) & (bought >= 0)) and np.all(np.isfinite(values))
    # A one-time buyer first seen 1e12 weeks ago: for t much shorter than T, equation 10
    # tends to r·t / (alpha + T).
    assert alive[0] == 1.0 and risk[0] == 0.0
    assert bought[0] == pytest.approx(model.r * 52 / (model.alpha + 1e12 + 52), rel=1e-4)
    # One purchase a week after the first, then silence for 1e12 weeks: long gone.
    assert alive[3] < 1e-12 and risk[3] > 1 - 1e-12 and bought[3] < 1e-12
    # 500 weekly purchases, the last a week ago: alive, about one a week for a year.
    assert alive[2] > 0.99 and 45 < bought[2] < 52
    # 100,000 purchases in 1e6 weeks, the last just now: one every ten weeks, and P(alive)
    # is (b + x - 1) / (a + b + x - 1) when t_x = T.
    assert alive[4] == pytest.approx((model.b + 99_999) / (model.a + model.b + 99_999),
                                     rel=1e-12)
    assert bought[4] == pytest.approx(5.2, rel=1e-3)


def test_inactive_means_long_silence_for_ones_own_rhythm():
    model, _ = _fits()
    summary = clv.Summary(customer=np.arange(5), frequency=np.array([2, 2, 0, 10, 0]),
                          recency=np.array([4.0, 16.0, 0.0, 10.0, 0.0]),
                          age=np.array([20.0, 20.0, 20.0, 14.0, 5.0]),
                          monetary=np.zeros(5), unit="weeks")
    alive = clv.probability_alive(model, summary)
    # Rhythms 2, 8 and 1 weeks (median 2); silences 16, 4, 20, 4 and 5 weeks. Customer 3's
    # silence is 4 times their rhythm, but the model still thinks them more likely alive.
    assert alive[0] < 0.5 < alive[3]
    assert clv.inactive(model, summary).tolist() == [True, False, True, False, False]
    assert clv.inactive(model, summary, population_rhythm=1.0).tolist() == [
        True, False, True, False, True]
    assert clv.inactive(model, summary, alive_below=0.6).tolist() == [
        True, False, True, True, False]
    with pytest.raises(InvalidInput, match="population_rhythm"):
        clv.inactive(model, clv.Summary(customer=np.arange(1), frequency=np.zeros(1),
                                        recency=np.zeros(1), age=np.ones(1),
                                        monetary=np.zeros(1), unit="weeks"))


def test_as_of_before_every_purchase_is_refused():
    customer, days, cents, _ = _purchases()
    with pytest.raises(InvalidInput, match="as_of: no purchase on or before 1996-12-31"):
        clv.summarize(customer, days, cents, as_of="1996-12-31", unit="weeks")


@pytest.mark.parametrize("unit", ["months", "W", ""])
def test_unknown_units_are_refused(unit):
    customer, days, cents, _ = _purchases()
    with pytest.raises(InvalidInput, match="unit: must be one of days, weeks"):
        clv.summarize(customer, days, cents, as_of=CALIBRATION_END, unit=unit)
    model, spend = _fits()
    with pytest.raises(InvalidInput, match="unit"):
        clv.lifetime_value(model, spend, _calibration(), unit=unit)


def test_a_model_in_weeks_refuses_a_summary_in_days():
    model, _ = _fits()
    with pytest.raises(InvalidInput, match="unit: the model counts time in weeks"):
        clv.probability_alive(model, _calibration("days"))


@pytest.mark.parametrize(("change", "message"), [
    ({"recency": np.array([3.0])}, "recency: must lie between 0 and the customer's age"),
    ({"frequency": np.array([0]), "recency": np.array([1.0])}, "recency: must be 0"),
    ({"frequency": np.array([1.5])}, "frequency: must hold finite int64 values"),
    ({"monetary": np.array([np.nan])}, "monetary: must hold finite float64 values"),
    ({"age": np.array([2.0, 3.0])}, "every column must have one value per customer"),
])
def test_impossible_histories_are_refused(change, message):
    columns = {"customer": np.array([1]), "frequency": np.array([1]),
               "recency": np.array([1.0]), "age": np.array([2.0]),
               "monetary": np.array([100.0]), **change}
    with pytest.raises(InvalidInput, match=message):
        clv.Summary(**columns, unit="days")


def test_bad_purchases_are_refused():
    when = np.array(["2024-01-01"], dtype="datetime64[D]")
    with pytest.raises(InvalidInput, match="placed_at"):
        clv.summarize(np.array([1]), np.array(["2024-01-01"]), np.array([1]),
                      as_of="2024-02-01", unit="days")
    with pytest.raises(InvalidInput, match="value"):
        clv.summarize(np.array([1]), when, np.array([-5]), as_of="2024-02-01", unit="days")
    with pytest.raises(InvalidInput, match="as_of: not a date"):
        clv.summarize(np.array([1]), when, np.array([5]), as_of="soon", unit="days")


def test_models_need_repeat_buyers():
    once = clv.summarize(np.array([1, 2]), np.array(["2024-01-01", "2024-01-03"],
                                                    dtype="datetime64[D]"),
                         np.array([100, 200]), as_of="2024-02-01", unit="days")
    with pytest.raises(InvalidInput, match="BG/NBD needs at least one"):
        clv.fit_bgnbd(once)
    with pytest.raises(InvalidInput, match="Gamma-Gamma needs at least one"):
        clv.fit_gamma_gamma(once)


def test_likelihoods_without_a_finite_maximum_are_refused():
    # Everyone bought again the next day and was never seen after: all left right after it,
    # drop-out probability 1 (a → ∞, b → 0); and every repeat buyer spends the same: no
    # spread at all (p, q → ∞).
    summary = clv.Summary(customer=np.arange(4), frequency=np.array([1, 1, 1, 0]),
                          recency=np.array([1.0, 1.0, 1.0, 0.0]), age=np.full(4, 50.0),
                          monetary=np.array([500.0, 500.0, 500.0, 0.0]), unit="days")
    with pytest.raises(clv.ModelDidNotConverge) as bgnbd:
        clv.fit_bgnbd(summary)
    with pytest.raises(clv.ModelDidNotConverge):
        clv.fit_gamma_gamma(summary)
    assert (bgnbd.value.code, bgnbd.value.status) == ("model_did_not_converge", 422)
