"""The segment rule language: a JSON tree read into typed nodes, every part checked.

    {"all": [...]}, {"any": [...]}, {"not": {...}}                       groups
    {"field": "orders_count", "op": "gte", "value": 5}                   profile fields,
    {"field": "traits.plan", "op": "eq", "value": "pro"}                 aggregates, traits
    {"event": "Product Viewed", "where": [{"field": "category", "op": "eq",
      "value": "shoes"}], "count": {"op": "gte", "value": 2}, "within_days": 30}
    {"bought": {"category": "Calçados"}, "within_days": 90}              product/category/brand
    {"tag": "vip"}, {"tag": "vip", "has": false}
    {"rfm_group": "Champions"}
    {"segment": 12}

Negative operators (ne, not_in, not_contains) match customers that have a value which
differs; {"not": ...} matches everyone else too. Text matching with contains, starts_with
and ends_with ignores case; eq and in compare exactly. A problem is an InvalidInput naming
where in the rule it is (`rule.all[1].op`) and the rule it breaks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from clientela.core.errors import InvalidInput

Kind = Literal["text", "enum", "number", "money", "time", "date", "days", "bool", "json"]
RFM_GROUPS = ("Champions", "Loyal", "Potential loyalist", "New customers", "Promising",
              "Need attention", "About to sleep", "At risk", "Can't lose them", "Hibernating",
              "Lost")
CONSENT_STATES = ("subscribed", "unsubscribed", "unknown")
OPS: dict[Kind, tuple[str, ...]] = {
    "text": ("eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with",
             "ends_with", "exists"),
    "enum": ("eq", "ne", "in", "not_in", "exists"),
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "exists"),
    "money": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "exists"),
    "time": ("gt", "gte", "lt", "lte", "between", "within_last_days", "exists"),
    "date": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "exists"),
    "days": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "exists"),
    "bool": ("eq", "exists"),
    "json": ("eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with",
             "ends_with", "gt", "gte", "lt", "lte", "between", "exists"),
}
COUNT_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")
MAX_DEPTH = 12
MAX_CONDITIONS = 200
MAX_LIST = 1000
_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_PATH_PARTS = 5


@dataclass(frozen=True, slots=True)
class Field:
    """A field a rule may name: its kind and, for enums, its values."""

    kind: Kind
    values: tuple[str, ...] = ()


_TEXT = Field("text")
_NUMBER = Field("number")
FIELDS: Mapping[str, Field] = {
    **dict.fromkeys(("email", "phone", "first_name", "last_name", "gender", "locale", "city",
                     "region", "country"), _TEXT),
    "birthday": Field("date"),
    **dict.fromkeys(("created_at", "first_seen_at", "last_seen_at", "first_order_at",
                     "last_order_at"), Field("time")),
    "email_marketing": Field("enum", CONSENT_STATES),
    **dict.fromkeys(("orders_count", "identify_count", "track_count", "page_count",
                     "screen_count", "rfm_recency", "rfm_frequency", "rfm_monetary",
                     "p_alive", "churn_risk", "expected_orders"), _NUMBER),
    **dict.fromkeys(("revenue", "average_order_value", "predicted_clv"), Field("money")),
    **dict.fromkeys(("days_since_last_order", "days_since_first_order",
                     "days_since_last_seen"), Field("days")),
    "rfm_group": Field("enum", RFM_GROUPS),
    "inactive": Field("bool"),
}


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Rule


@dataclass(frozen=True, slots=True)
class Compare:
    """An operator and its (checked) value; `value` is a tuple for in/not_in/between."""

    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class FieldIs:
    field: str  # a FIELDS key, or "traits" with `path`
    path: tuple[str, ...]
    compare: Compare


@dataclass(frozen=True, slots=True)
class Window:
    """When something happened: within the last `days`, or from `start` until `end`."""

    days: int | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Performed:
    event: str
    where: tuple[tuple[tuple[str, ...], Compare], ...]  # (property path, comparison)
    count: Compare  # op in COUNT_OPS, value an int
    window: Window


@dataclass(frozen=True, slots=True)
class Bought:
    by: Literal["product", "category", "brand"]
    value: str
    window: Window


@dataclass(frozen=True, slots=True)
class HasTag:
    tag: str
    has: bool


@dataclass(frozen=True, slots=True)
class InRfmGroup:
    group: str


@dataclass(frozen=True, slots=True)
class InSegment:
    segment_id: int


Rule = All | AnyOf | Not | FieldIs | Performed | Bought | HasTag | InRfmGroup | InSegment


def parse_rule(data: Any) -> Rule:
    """The rule `data` (parsed JSON) describes, or InvalidInput naming what is wrong."""
    counter = [0]
    return _node(data, "rule", 0, counter)


def _fail(where: str, message: str) -> InvalidInput:
    return InvalidInput(f"{where}: {message}", code="invalid_rule")


_SHAPES = ("all", "any", "not", "field", "event", "bought", "tag", "rfm_group", "segment")


def _node(data: Any, where: str, depth: int, counter: list[int]) -> Rule:
    if depth > MAX_DEPTH:
        raise _fail(where, f"rules nest at most {MAX_DEPTH} levels deep")
    if not isinstance(data, dict):
        raise _fail(where, "must be an object such as {\"all\": [...]} or "
                    "{\"field\": ..., \"op\": ..., \"value\": ...}")
    shape = next((key for key in _SHAPES if key in data), None)
    if shape is None:
        raise _fail(where, f"must have one of the keys {', '.join(_SHAPES)}")
    if shape in ("all", "any"):
        _only(data, {shape}, where)
        items = data[shape]
        if not isinstance(items, list):
            raise _fail(f"{where}.{shape}", "must be a list of rules")
        nodes = tuple(_node(item, f"{where}.{shape}[{index}]", depth + 1, counter)
                      for index, item in enumerate(items))
        return All(nodes) if shape == "all" else AnyOf(nodes)
    if shape == "not":
        _only(data, {"not"}, where)
        return Not(_node(data["not"], f"{where}.not", depth + 1, counter))
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise _fail(where, f"a rule holds at most {MAX_CONDITIONS} conditions")
    if shape == "field":
        return _field(data, where)
    if shape == "event":
        return _performed(data, where)
    if shape == "bought":
        return _bought(data, where)
    if shape == "tag":
        _only(data, {"tag", "has"}, where)
        has = data.get("has", True)
        if not isinstance(has, bool):
            raise _fail(f"{where}.has", "must be true or false")
        return HasTag(_text(data["tag"], f"{where}.tag", 100).lower(), has)
    if shape == "rfm_group":
        _only(data, {"rfm_group"}, where)
        group = data["rfm_group"]
        if group not in RFM_GROUPS:
            raise _fail(f"{where}.rfm_group", f"must be one of {', '.join(RFM_GROUPS)}")
        return InRfmGroup(group)
    _only(data, {"segment"}, where)
    segment_id = data["segment"]
    if isinstance(segment_id, bool) or not isinstance(segment_id, int) \
            or not 1 <= segment_id < 2**63:
        raise _fail(f"{where}.segment", "must be a segment id (a positive whole number)")
    return InSegment(segment_id)


def _only(data: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise _fail(f"{where}.{extra[0]}", f"not allowed here (allowed: "
                    f"{', '.join(sorted(allowed))})")


def _text(value: Any, where: str, limit: int = 500) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "must be a non-empty text")
    if "\x00" in value:
        raise _fail(where, "must not contain NUL characters")
    if len(value) > limit:
        raise _fail(where, f"at most {limit} characters")
    return value.strip()


def _field(data: dict[str, Any], where: str) -> FieldIs:
    _only(data, {"field", "op", "value"}, where)
    name = data["field"]
    if not isinstance(name, str):
        raise _fail(f"{where}.field", "must be a field name")
    if name.startswith("traits."):
        path = _path(name.removeprefix("traits."), f"{where}.field")
        return FieldIs("traits", path, _compare(data, "json", (), where))
    field = FIELDS.get(name)
    if field is None:
        raise _fail(f"{where}.field", f"unknown field {name[:64]!r}; fields are "
                    f"{', '.join(FIELDS)} or traits.<key>")
    return FieldIs(name, (), _compare(data, field.kind, field.values, where))


def _path(text: str, where: str) -> tuple[str, ...]:
    parts = tuple(text.split("."))
    if len(parts) > _PATH_PARTS or not all(_KEY.fullmatch(part) for part in parts):
        raise _fail(where, "a key path is up to 5 keys of letters, digits, '_' or '-', "
                    "joined by dots")
    return parts


def _compare(data: dict[str, Any], kind: Kind, values: tuple[str, ...], where: str
             ) -> Compare:
    op = data.get("op")
    if op not in OPS[kind]:
        raise _fail(f"{where}.op", f"must be one of {', '.join(OPS[kind])} for this field")
    if "value" not in data:
        raise _fail(f"{where}.value", "required")
    return Compare(op, _value(data["value"], kind, op, values, f"{where}.value"))


def _value(value: Any, kind: Kind, op: str, values: tuple[str, ...], where: str) -> Any:
    if op == "exists":
        if not isinstance(value, bool):
            raise _fail(where, "must be true or false for exists")
        return value
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise _fail(where, f"must be a list of 1 to {MAX_LIST} values for {op}")
        items = tuple(_scalar(item, kind, values, f"{where}[{index}]")
                      for index, item in enumerate(value))
        if len({_json_type(item) for item in items}) > 1:
            raise _fail(where, "the values must all be texts, all numbers or all true/false")
        return items
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(where, "must be a list of two values [low, high] for between")
        low, high = (_scalar(item, kind, values, f"{where}[{index}]")
                     for index, item in enumerate(value))
        if _json_type(low) != _json_type(high) or isinstance(low, bool):
            raise _fail(where, "low and high must be two numbers, two texts or two dates")
        if low > high:
            raise _fail(where, "the low end must not be above the high end")
        return (low, high)
    if op == "within_last_days":
        return _whole(value, where)
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        return _text(value, where)
    return _scalar(value, kind, values, where)


def _json_type(value: Any) -> str:
    return "bool" if isinstance(value, bool) else "number" if isinstance(value, int | float) \
        else type(value).__name__


def _scalar(value: Any, kind: Kind, values: tuple[str, ...], where: str) -> Any:
    if kind == "text":
        return _text(value, where)
    if kind == "enum":
        if value not in values:
            raise _fail(where, f"must be one of {', '.join(values)}")
        return value
    if kind == "number":
        return _number(value, where)
    if kind == "money":
        return _number(value, where)
    if kind == "days":
        return _whole(value, where)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _fail(where, "must be true or false")
        return value
    if kind in ("time", "date"):
        return _moment(value, where)
    # json: a text, a number or true/false
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _number(value, where)
    return _text(value, where)


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value \
            or abs(value) > 1e15:
        raise _fail(where, "must be a number")
    return value


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
        raise _fail(where, "must be a whole number from 0 to 100000")
    return value


def _moment(value: Any, where: str) -> datetime:
    """An ISO-8601 date (midnight UTC) or date-time (UTC if no offset)."""
    if isinstance(value, str):
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                return datetime(day.year, day.month, day.day, tzinfo=UTC)
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            pass
    raise _fail(where, "must be an ISO-8601 date (2026-01-31) or date-time")


def _window(data: dict[str, Any], where: str) -> Window:
    if "within_days" in data and "between" in data:
        raise _fail(f"{where}.between", "give within_days or between, not both")
    if "within_days" in data:
        return Window(days=_whole(data["within_days"], f"{where}.within_days"))
    if "between" in data:
        span = data["between"]
        if not isinstance(span, list) or len(span) != 2:
            raise _fail(f"{where}.between", "must be [start, end] dates")
        start = _moment(span[0], f"{where}.between[0]")
        end = _moment(span[1], f"{where}.between[1]")
        if isinstance(span[1], str) and len(span[1]) == 10 and end.year < 9999:
            end += timedelta(days=1)  # an end date counts whole
        if end <= start:
            raise _fail(f"{where}.between", "the end must come after the start")
        return Window(start=start, end=end)
    return Window()


def _performed(data: dict[str, Any], where: str) -> Performed:
    _only(data, {"event", "where", "count", "within_days", "between"}, where)
    event = _text(data["event"], f"{where}.event", 255)
    filters = data.get("where", [])
    if not isinstance(filters, list) or len(filters) > 20:
        raise _fail(f"{where}.where", "must be a list of up to 20 property conditions")
    where_items = []
    for index, item in enumerate(filters):
        at = f"{where}.where[{index}]"
        if not isinstance(item, dict):
            raise _fail(at, "must be {\"field\": ..., \"op\": ..., \"value\": ...}")
        _only(item, {"field", "op", "value"}, at)
        if not isinstance(item.get("field"), str):
            raise _fail(f"{at}.field", "must be a property name")
        path = _path(item["field"].removeprefix("properties."), f"{at}.field")
        where_items.append((path, _compare(item, "json", (), at)))
    count = data.get("count", {"op": "gte", "value": 1})
    if not isinstance(count, dict) or count.get("op") not in COUNT_OPS:
        raise _fail(f"{where}.count", f"must be {{\"op\": one of {', '.join(COUNT_OPS)}, "
                    "\"value\": N}")
    _only(count, {"op", "value"}, f"{where}.count")
    times = _whole(count.get("value"), f"{where}.count.value")
    return Performed(event, tuple(where_items), Compare(count["op"], times),
                     _window(data, where))


def _bought(data: dict[str, Any], where: str) -> Bought:
    _only(data, {"bought", "within_days", "between"}, where)
    what = data["bought"]
    if not isinstance(what, dict) or len(what) != 1 \
            or next(iter(what)) not in ("product", "category", "brand"):
        raise _fail(f"{where}.bought", "must be {\"product\": id}, {\"category\": name} or "
                    "{\"brand\": name}")
    by, value = next(iter(what.items()))
    return Bought(by, _text(value, f"{where}.bought.{by}", 500), _window(data, where))
