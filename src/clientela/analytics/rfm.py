"""RFM: recency, frequency and monetary scores 1-5 and the named groups, in NumPy.

A score is the customer's quintile among the customers with at least one purchase: 1 + how
many fifths of them have a strictly lower value (recency counts backwards: the most recent
buyers score 5). Equal values always get equal scores, so everyone who bought once shares
the lowest frequency score, as a shop owner expects ("new customers" bought once, lately).

Groups come from the recency and frequency scores, the usual R×F grid:

    F →      1              2              3              4              5
    R=5  New customers  Potential loyalist  Potential loyalist  Champions     Champions
    R=4  Promising      Potential loyalist  Potential loyalist  Loyal         Loyal
    R=3  About to sleep About to sleep      Need attention      Loyal         Loyal
    R=2  Hibernating    Hibernating         At risk             At risk       Can't lose them
    R=1  Lost           Hibernating         At risk             At risk       Can't lose them
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clientela.core.errors import InvalidInput

GROUPS = ("Champions", "Loyal", "Potential loyalist", "New customers", "Promising",
          "Need attention", "About to sleep", "At risk", "Can't lose them", "Hibernating",
          "Lost")
# GRID[r - 1][f - 1]: the group of each (R, F) cell.
GRID = (
    ("Lost", "Hibernating", "At risk", "At risk", "Can't lose them"),
    ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),
    ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
    ("Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Loyal"),
    ("New customers", "Potential loyalist", "Potential loyalist", "Champions", "Champions"),
)
_GROUP_INDEX = np.array([[GROUPS.index(name) for name in row] for row in GRID])

Ints = NDArray[np.int64]


@dataclass(frozen=True)
class Scores:
    recency: Ints  # 1-5 each
    frequency: Ints
    monetary: Ints
    group: Ints  # index into GROUPS

    @property
    def group_names(self) -> NDArray[np.str_]:
        names: NDArray[np.str_] = np.asarray(GROUPS)[self.group]
        return names


@dataclass(frozen=True)
class Buyers:
    """What RFM scores, per customer with a purchase (in customer id order)."""

    customer: Ints
    days_since_last: Ints
    purchases: Ints
    spend: Ints


def buyers(customer: Ints, day: NDArray[np.datetime64], value: Ints, as_of: np.datetime64
           ) -> Buyers:
    """Per customer, from one row per purchase (who, which day, how much): days from the
    last purchase to `as_of`, purchases, total spend. Counted in arrays indexed by customer
    id (no sort) when the ids are dense enough, as database ids are."""
    if not len(customer):
        empty = np.zeros(0, np.int64)
        return Buyers(empty, empty, empty, empty)
    low = int(customer.min())
    if int(customer.max()) - low <= 4 * len(customer):
        ids, slot = np.arange(low, int(customer.max()) + 1), customer - low
    else:
        ids, slot = np.unique(customer, return_inverse=True)
    days = day.astype(np.int64)
    purchases = np.bincount(slot, minlength=len(ids))
    spend = np.zeros(len(ids), np.int64)
    np.add.at(spend, slot, value)
    last = np.full(len(ids), days.min(), np.int64)
    np.maximum.at(last, slot, days)
    bought = purchases > 0
    since = as_of.astype("datetime64[D]").astype(np.int64) - last[bought]
    return Buyers(ids[bought], since, purchases[bought], spend[bought])


def quintile(values: ArrayLike) -> Ints:
    """1 + the number of fifths of `values` strictly below each value (1-5)."""
    array = np.asarray(values)
    if array.ndim != 1 or not len(array) or not np.issubdtype(array.dtype, np.number):
        raise InvalidInput("values: must be a non-empty list of numbers")
    # With s values below it, a value scores 1 + floor(5 s / n).
    n = len(array)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if high - low <= n:  # days, counts: each distinct value scored once, by counting
            counts = np.bincount(array - low)
            table: Ints = 1 + 5 * (np.cumsum(counts) - counts) // n
            counted: Ints = table[array - low]
            return counted
    # It passes the k-th cut when s >= ceil(k n / 5), that is when it exceeds the value
    # ranked ceil(k n / 5) - 1 (from 0): four ranks from one partition, not a sort.
    ranks = [-(-k * n // 5) - 1 for k in range(1, 5)]
    cuts = np.partition(array, ranks)[ranks]
    scores: Ints = 1 + np.searchsorted(cuts, array, side="left")  # cuts strictly below
    return scores


def score(days_since_last: ArrayLike, purchases: ArrayLike, spend: ArrayLike) -> Scores:
    """Scores and groups of customers with at least one purchase: days since their last
    purchase, how many purchases, how much they spent (any one unit)."""
    recency = quintile(-np.asarray(days_since_last))
    frequency = quintile(purchases)
    monetary = quintile(spend)
    if not len(recency) == len(frequency) == len(monetary):
        raise InvalidInput("rfm: recency, frequency and spend must have one value per "
                           "customer")
    return Scores(recency, frequency, monetary,
                  _GROUP_INDEX.ravel()[(recency - 1) * 5 + (frequency - 1)])
