"""A rule (see `rules`) compiled to one SQL condition on the customers table.

Everything is bound parameters; field names come from `rules.FIELDS` and JSON keys are
checked there too. Actions compile to `customers.id IN (SELECT customer_id FROM events ...
GROUP BY customer_id HAVING count(*) ...)` (NOT IN when the count may be zero), purchases to
EXISTS over order items, a segment to its own rule (so a preview is always current). JSON
values are typed before they are compared, so that a trait holding text never meets a
number; SQLite and PostgreSQL answer the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Numeric,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from clientela.commerce.models import Order, OrderItem, Product
from clientela.core.errors import InvalidInput
from clientela.core.money import to_minor
from clientela.customers.models import Customer, CustomerTag
from clientela.db import unindexed
from clientela.segments.rules import (
    All,
    AnyOf,
    Bought,
    Compare,
    FieldIs,
    HasTag,
    InRfmGroup,
    InSegment,
    Not,
    Performed,
    Rule,
    Window,
)
from clientela.tracking.models import INDEXED_PROPERTIES, Event

C = Customer.__table__.c
E = Event.__table__.c
_AGES = {"days_since_last_order": "last_order_at", "days_since_first_order": "first_order_at",
         "days_since_last_seen": "last_seen_at"}
_MONEY = {"revenue": C.revenue_cents, "predicted_clv": C.predicted_clv_cents}
_COMPARE = {"eq": "__eq__", "ne": "__ne__", "gt": "__gt__", "gte": "__ge__", "lt": "__lt__",
            "lte": "__le__"}


@dataclass(frozen=True)
class _Who:
    """The ids of the customers who did something (`column`: their id inside `ids`)."""

    ids: Select[Any]
    column: Any
    grouped: bool = False
    # The same question asked of one customer at a time (in NOT EXISTS): written so that
    # SQLite's planner takes the per-customer index, not one made for the whole question.
    one_by_one: Select[Any] | None = None


@dataclass(frozen=True)
class _Place:
    """Where a condition sits: inside which segments (to refuse a loop), whether conditions
    before it narrow the customers it is tried on, and whether it is one of the query's
    top-level AND terms (not inside an OR or a NOT)."""

    inside: tuple[int, ...]
    narrowed: bool
    top: bool = True


@dataclass(frozen=True)
class Compiler:
    """Compiles rules for one database (`dialect`), at one moment (`now`, for windows and
    ages), with money in `currency`; `segment_rule` reads a saved segment's rule."""

    dialect: str
    now: datetime
    currency: str
    segment_rule: Callable[[int], Rule]

    def live(self) -> ColumnElement[bool]:
        """Not merged into another customer. Nearly everyone is live, so SQLite is kept off
        the column's index: walking it and then the table row by row costs four times a
        plain scan."""
        return unindexed(C.merged_into_id).is_(None)

    def condition(self, rule: Rule, within: tuple[int, ...] = ()) -> ColumnElement[bool]:
        """The SQL condition on `customers` that `rule` stands for; `within`: the segments
        it is the rule of (naming one of them is a loop, refused)."""
        return self._condition(rule, _Place(inside=within, narrowed=False))

    def _condition(self, rule: Rule, place: _Place) -> ColumnElement[bool]:
        if isinstance(rule, All):
            return self._all(rule, place)
        if isinstance(rule, AnyOf):
            inner = replace(place, top=False)
            return or_(false(), *(self._condition(item, inner) for item in rule.items))
        if isinstance(rule, Not):
            place = replace(place, top=False)
            members = self._members(rule.item)
            if members is not None:  # "did not", "has not": an anti-join, not NOT (... IN ...)
                return self._is_in(members[0], negate=not members[1], narrowed=place.narrowed)
            # Unknown (NULL) inside counts as "does not match".
            return not_(func.coalesce(self._condition(rule.item, place), false()))
        if isinstance(rule, FieldIs):
            return self._field(rule)
        if isinstance(rule, Performed | Bought | HasTag):
            members = self._members(rule)
            return true() if members is None else self._is_in(*members, narrowed=place.narrowed)
        if isinstance(rule, InRfmGroup):
            return C.rfm_group == rule.group
        return self._segment(rule, place)

    def _all(self, rule: All, place: _Place) -> ColumnElement[bool]:
        """Column tests first, so a row failing one is not tried against the rest. Inside an
        OR or a NOT, a column test on a NULL (no RFM group, no order yet) is unknown rather
        than false, and AND goes on past unknown: on PostgreSQL each is written there as
        `(...) IS true`, so that the subqueries after it run only for the rows that pass
        (SQLite's planner does better with the plain tests: it looks them up by index)."""
        inner = replace(place, narrowed=place.narrowed or len(rule.items) > 1)
        columns = [item for item in rule.items if isinstance(item, FieldIs | InRfmGroup)]
        others = [item for item in rule.items if not isinstance(item, FieldIs | InRfmGroup)]
        tests = [self._condition(item, inner) for item in columns]
        if others and not place.top and self.dialect == "postgresql":
            tests = [test.is_(true()) for test in tests]
        return and_(true(), *tests, *(self._condition(item, inner) for item in others))

    # --- profile fields ------------------------------------------------------------------

    def _field(self, rule: FieldIs) -> ColumnElement[bool]:
        if rule.field == "traits":
            return _JsonValue(self.dialect, C.traits, rule.path).compare(rule.compare)
        if rule.field in _AGES:
            return self._age(getattr(C, _AGES[rule.field]), rule.compare)
        if rule.field in _MONEY or rule.field == "average_order_value":
            return self._money(rule.field, rule.compare)
        column = getattr(C, rule.field)
        compare = rule.compare
        if rule.field == "birthday" and compare.op != "exists":
            compare = Compare(compare.op, _dates(compare.value))
        return _plain(column, compare, self.now)

    def _money(self, field: str, compare: Compare) -> ColumnElement[bool]:
        column = (C.revenue_cents * 1.0 / func.nullif(C.orders_count, 0)
                  if field == "average_order_value" else _MONEY[field])
        if compare.op == "exists":
            return column.is_not(None) if compare.value else column.is_(None)
        minor = _minor(compare.value, self.currency)
        return _plain(column, Compare(compare.op, minor), self.now)

    def _age(self, column: ColumnElement[Any], compare: Compare) -> ColumnElement[bool]:
        """Whole days since `column` (as of now) compared: rewritten as a range on the
        column itself, so an index on it serves."""
        if compare.op == "exists":
            return column.is_not(None) if compare.value else column.is_(None)

        def at_least(days: int) -> ColumnElement[bool]:
            return column <= self.now - timedelta(days=days)

        def at_most(days: int) -> ColumnElement[bool]:
            return column > self.now - timedelta(days=days + 1)

        n = compare.value
        if compare.op == "between":
            return and_(at_least(n[0]), at_most(n[1]))
        return {"gte": lambda: at_least(n), "gt": lambda: at_least(n + 1),
                "lte": lambda: at_most(n), "lt": lambda: at_most(n - 1) if n else false(),
                "eq": lambda: and_(at_least(n), at_most(n)),
                "ne": lambda: or_(at_least(n + 1), at_most(n - 1) if n else false())}[
            compare.op]()

    # --- actions -------------------------------------------------------------------------

    # --- who did something: actions, purchases, tags --------------------------------------

    def _members(self, rule: Rule) -> tuple[_Who, bool] | None:
        """For an action, purchase or tag: who has it, and whether the condition is that
        they do not (None: everyone, or not such a condition)."""
        if isinstance(rule, HasTag):
            return _Who(select(CustomerTag.customer_id).where(
                CustomerTag.tag == rule.tag), CustomerTag.customer_id), not rule.has
        if isinstance(rule, Bought):
            return self._bought(rule), False
        if isinstance(rule, Performed):
            return self._performed(rule)
        return None

    def _is_in(self, who: _Who, negate: bool, narrowed: bool) -> ColumnElement[bool]:
        """Customers among `who` (or not, `negate`); `narrowed`: other conditions come
        first, so only some customers get this far."""
        if not negate:
            return C.id.in_(who.ids)
        if not who.grouped and (self.dialect == "postgresql" or narrowed):
            # NOT EXISTS: an anti-join on PostgreSQL (NOT IN it may rescan per customer). On
            # SQLite a look-up for each customer that gets this far: cheaper than listing
            # everyone who did it, unless nearly every customer does get here.
            one_by_one = who.ids if who.one_by_one is None else who.one_by_one
            return ~exists(one_by_one.where(who.column == C.id))
        return C.id.not_in(who.ids)

    def _performed(self, rule: Performed) -> tuple[_Who, bool] | None:
        window = self._window(E.timestamp, rule.window)
        done = select(E.customer_id).where(E.event == rule.event, *window, *(
            self._property(path, compare) for path, compare in rule.where))
        # One customer's events: by ix_events_customer_time, with "+ event" (and the typed
        # property test) so that the indexes on event and property are not candidates.
        one_by_one = select(E.customer_id).where(unindexed(E.event) == rule.event, *window, *(
            _JsonValue(self.dialect, E.properties, path).compare(compare)
            for path, compare in rule.where)) if self.dialect == "sqlite" else None
        op, n = rule.count.op, rule.count.value

        def grouped(holds: ColumnElement[bool]) -> _Who:
            return _Who(done.group_by(E.customer_id).having(holds), E.customer_id, True)

        def holds(count: Any) -> ColumnElement[bool]:
            return getattr(count, _COMPARE[op])(n)  # type: ignore[no-any-return]

        # Customers who never did it are in the segment exactly when zero times fits.
        zero_fits = {"eq": n == 0, "ne": n != 0, "gt": False, "gte": n == 0, "lt": n > 0,
                     "lte": True}[op]
        if not zero_fits:
            if (op, n) in (("gte", 1), ("gt", 0), ("ne", 0)):
                return _Who(done, E.customer_id, one_by_one=one_by_one), False
            return grouped(holds(func.count())), False
        if (op, n) in (("eq", 0), ("lt", 1), ("lte", 0)):
            return _Who(done, E.customer_id, one_by_one=one_by_one), True
        if (op, n) == ("gte", 0):
            return None
        return grouped(not_(holds(func.count()))), True

    def _property(self, path: tuple[str, ...], compare: Compare) -> ColumnElement[bool]:
        """An event property compared. Text equality on an indexed property is also written
        as its index is, so that the index serves it: `properties ->> 'key'` on PostgreSQL,
        `json_extract(properties, '$.key')` on SQLite. On SQLite that alone is exact for
        text that cannot be the JSON of an array or object (numbers, booleans and null never
        equal text); otherwise the typed comparison follows it."""
        typed = _JsonValue(self.dialect, E.properties, path).compare(compare)
        values = compare.value if isinstance(compare.value, tuple) else (compare.value,)
        if (len(path) != 1 or path[0] not in INDEXED_PROPERTIES or compare.op not in ("eq", "in")
                or not all(isinstance(value, str) for value in values)):
            return typed
        # The key is one of INDEXED_PROPERTIES, so writing it into the SQL is safe.
        value: ColumnElement[Any] = (
            E.properties.op("->>", return_type=Text())(literal_column(f"'{path[0]}'"))
            if self.dialect == "postgresql"
            else func.json_extract(E.properties, literal_column(f"'$.{path[0]}'")))
        indexed = value.in_(values) if compare.op == "in" else value == values[0]
        if self.dialect == "sqlite" and not any(v.startswith(("[", "{")) for v in values):
            return indexed
        return and_(indexed, typed)

    def _window(self, column: Any, window: Window) -> list[ColumnElement[bool]]:
        if window.days is not None:
            return [column >= self.now - timedelta(days=window.days)]
        if window.start is not None and window.end is not None:
            return [column >= window.start, column < window.end]
        return []

    def _bought(self, rule: Bought) -> _Who:
        item = OrderItem.__table__.c
        order = Order.__table__.c
        if rule.by == "product":
            matches = or_(item.sku == rule.value, item.product_id.in_(
                select(Product.id).where(Product.external_id == rule.value)))
        elif rule.by == "category":  # the category or one below it ("Shoes > Running")
            matches = or_(item.category == rule.value,
                          item.category.like(_escaped(rule.value) + " > %", escape="\\"))
        else:
            matches = item.brand == rule.value
        # Who bought, found from the items (an index range per product, category or brand
        # query), not one look-up per customer.
        return _Who(select(order.customer_id).join(OrderItem, item.order_id == order.id)
                    .where(order.status != "cancelled", matches,
                           *self._window(order.placed_at, rule.window)), order.customer_id)

    def _segment(self, rule: InSegment, place: _Place) -> ColumnElement[bool]:
        if rule.segment_id in place.inside:
            raise InvalidInput(f"rule: segment {rule.segment_id} includes itself",
                               code="invalid_rule")
        return self._condition(self.segment_rule(rule.segment_id),
                               replace(place, inside=(*place.inside, rule.segment_id)))


def _plain(column: ColumnElement[Any], compare: Compare, now: datetime) -> ColumnElement[bool]:
    """A column compared the plain way (text, number, enum, time, bool)."""
    op, value = compare.op, compare.value
    if op == "exists":
        return column.is_not(None) if value else column.is_(None)
    if op in _COMPARE:
        condition: ColumnElement[bool] = getattr(column, _COMPARE[op])(value)
        return and_(column.is_not(None), condition) if op == "ne" else condition
    if op == "in":
        return column.in_(value)
    if op == "not_in":
        return and_(column.is_not(None), column.not_in(value))
    if op == "between":
        return column.between(value[0], value[1])
    if op == "within_last_days":
        return and_(column >= now - timedelta(days=value), column <= now)
    return _text_match(column, op, value)


def _text_match(column: ColumnElement[Any], op: str, value: str) -> ColumnElement[bool]:
    pattern = {"contains": f"%{_escaped(value)}%", "not_contains": f"%{_escaped(value)}%",
               "starts_with": f"{_escaped(value)}%", "ends_with": f"%{_escaped(value)}"}[op]
    matched = func.lower(column).like(func.lower(literal(pattern, String)), escape="\\")
    return and_(column.is_not(None), ~matched) if op == "not_contains" else matched


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _dates(value: Any) -> Any:
    """Birthdays are dates: compare with the date part of the moments given."""
    if isinstance(value, tuple):
        return tuple(item.date() for item in value)
    return value.date()


def _minor(value: Any, currency: str) -> Any:
    if isinstance(value, tuple):
        return tuple(to_minor(item, "value", currency) for item in value)
    return to_minor(value, "value", currency)


class _JsonValue:
    """One value inside a JSON column, typed before it is compared."""

    def __init__(self, dialect: str, column: Any, path: tuple[str, ...]) -> None:
        self.dialect = dialect
        if dialect == "postgresql":
            keys = literal(list(path), ARRAY(Text))
            self.text = column.op("#>>")(keys)
            self.kind = func.jsonb_typeof(column.op("#>")(keys))
        else:
            json_path = "$" + "".join(f'."{key}"' for key in path)
            self.text = func.json_extract(column, json_path)
            self.kind = func.json_type(column, json_path)

    def _is(self, kind: str) -> ColumnElement[bool]:
        names = {"string": ("string",), "number": ("number",), "boolean": ("boolean",),
                 "null": ("null",)}[kind] if self.dialect == "postgresql" else {
            "string": ("text",), "number": ("integer", "real"), "boolean": ("true", "false"),
            "null": ("null",)}[kind]
        return self.kind.in_(names)

    def _number(self) -> Any:
        return case((self._is("number"), cast(self.text, Numeric)), else_=None)

    def _bool(self) -> Any:
        """'true' or 'false' (SQLite reads JSON true as 1, so its type names the value)."""
        if self.dialect == "postgresql":
            return case((self._is("boolean"), self.text), else_=None)
        return case((self._is("boolean"), self.kind), else_=None)

    def compare(self, compare: Compare) -> ColumnElement[bool]:
        op, value = compare.op, compare.value
        if op == "exists":
            present = and_(self.kind.is_not(None), ~self._is("null"))
            return present if value else ~present
        sample = value[0] if isinstance(value, tuple) else value
        if op in ("contains", "not_contains", "starts_with", "ends_with"):
            return and_(self._is("string"), _text_match(self.text, op, value))
        if isinstance(sample, bool):
            target = self._bool()
            value = tuple("true" if v else "false" for v in value) \
                if isinstance(value, tuple) else ("true" if value else "false")
        elif isinstance(sample, int | float):
            target = self._number()
        else:
            target = case((self._is("string"), self.text), else_=None)
        return _plain(target, Compare(op, value), datetime.min)
