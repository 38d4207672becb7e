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
from typing import Any

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


def quintile(values: ArrayLike) -> Ints:
    """1 + the number of fifths of `values` strictly below each value (1-5)."""
    array = np.asarray(values)
    if array.ndim != 1 or not len(array) or not np.issubdtype(array.dtype, np.number):
        raise InvalidInput("values: must be a non-empty list of numbers")
    scores: Ints = 1 + (5 * _smaller(array)) // len(array)
    return scores


def _smaller(array: NDArray[Any]) -> Ints:
    """For each value, how many values are strictly smaller."""
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if high - low <= 4 * len(array):  # days, counts: one pass, no sort
            counts = np.bincount(array - low)
            smaller: Ints = (np.cumsum(counts) - counts)[array - low]
            return smaller
    order = np.argsort(array, kind="stable")
    ordered = array[order]
    # In sorted order, each value's count of smaller ones is where its run of equals starts.
    starts = np.empty(len(ordered), dtype=bool)
    starts[0], starts[1:] = True, ordered[1:] != ordered[:-1]
    below = np.empty(len(array), dtype=np.int64)
    below[order] = np.maximum.accumulate(np.where(starts, np.arange(len(ordered)), 0))
    return below


def score(days_since_last: ArrayLike, purchases: ArrayLike, spend: ArrayLike) -> Scores:
    """Scores and groups of customers with at least one purchase: days since their last
    purchase, how many purchases, how much they spent (any one unit)."""
    recency = quintile(-np.asarray(days_since_last))
    frequency = quintile(purchases)
    monetary = quintile(spend)
    if not len(recency) == len(frequency) == len(monetary):
        raise InvalidInput("rfm: recency, frequency and spend must have one value per "
                           "customer")
    return Scores(recency, frequency, monetary, _GROUP_INDEX[recency - 1, frequency - 1])
