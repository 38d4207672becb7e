"""Scenarios in words for the dashboard: a trigger ("Each time the customer does
“Order Completed”") and a step ("Wait 3 days"), from their stored JSON."""

from __future__ import annotations

import json
from typing import Any

TRIGGERS = {
    "event": "Each time the customer does an event",
    "event_not_followed": "An event not followed by another within some hours",
    "first_order": "The customer's first order",
    "cart_abandoned": "A cart left without an order",
    "segment_entered": "The customer enters a segment",
    "segment_left": "The customer leaves a segment",
    "subscribed": "The customer subscribes to marketing e-mail",
    "birthday": "The customer's birthday",
    "first_order_anniversary": "The anniversary of the first order",
    "days_since_last_order": "A number of days since the last order",
    "inactive": "The customer is flagged inactive for their own buying rhythm",
}
REENTRY = {"never": "Never: once per customer",
           "after_exit": "Again once the previous time has ended",
           "always": "Every time the trigger fires"}
STEPS = {"wait": "Wait", "email": "E-mail", "branch": "Branch", "tag": "Tag",
         "trait": "Set a trait", "webhook": "Webhook"}


def _amount(value: Any, unit: str) -> str:
    """3 days, 1 hour, 1.5 hours."""
    number = f"{value:g}" if isinstance(value, int | float) else str(value)
    return f"{number} {unit}" if value == 1 else f"{number} {unit}s"


def trigger_words(trigger: dict[str, Any], segments: dict[int, str]) -> str:
    """What starts the scenario, as the shop would say it."""
    kind = trigger.get("type", "")
    segment = segments.get(trigger.get("segment_id", 0), f"#{trigger.get('segment_id')}")
    if kind == "event":
        return f"Each time the customer does “{trigger.get('event')}”"
    if kind == "event_not_followed":
        return (f"“{trigger.get('event')}” not followed by “{trigger.get('followed_by')}” "
                f"within {_amount(trigger.get('within_hours'), 'hour')}")
    if kind == "segment_entered":
        ends = " (leaving it ends the scenario)" if trigger.get("exit_on_leave", True) else ""
        return f"The customer enters the segment {segment}{ends}"
    if kind == "segment_left":
        return f"The customer leaves the segment {segment}"
    if kind == "days_since_last_order":
        return f"{_amount(trigger.get('days'), 'day')} since the last order"
    return TRIGGERS.get(str(kind), str(kind))


def _wait_words(step: dict[str, Any]) -> str:
    if step.get("best_hour"):
        return "Wait until the customer's best hour (else the shop's), within 24 hours"
    if step.get("until_hour") is not None:
        return f"Wait until {step['until_hour']:02d}:00 UTC"
    if step.get("days") is not None:
        return f"Wait {_amount(step['days'], 'day')}"
    return f"Wait {_amount(step.get('hours'), 'hour')}"


def step_words(step: dict[str, Any], steps: int, templates: dict[int, str]) -> str:
    """One step, as the shop would say it (`steps`: how many the scenario has)."""
    kind = step.get("type")
    if kind == "wait":
        return _wait_words(step)
    if kind == "email":
        template = templates.get(step.get("template_id", 0), f"#{step.get('template_id')}")
        coupon = f", coupon {step['coupon']}" if step.get("coupon") else ""
        return f"E-mail “{step.get('subject')}” (template {template}{coupon})"
    if kind == "branch":
        target = step.get("else_step", steps)
        where = "the end" if target >= steps else f"step {target + 1}"
        return f"If the customer matches the rule, go on; else go to {where}"
    if kind == "tag":
        return f"Add the tag {step['add']}" if step.get("add") else (
            f"Remove the tag {step.get('remove')}")
    if kind == "trait":
        return f"Set the trait {step.get('key')} to {json.dumps(step.get('value'))}"
    if kind == "webhook":
        return f"Call {step.get('url')}"
    return str(kind)
