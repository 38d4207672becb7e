"""Imports every domain's tables so the metadata is complete (migrations, tests)."""

from __future__ import annotations


def load_all() -> None:
    """Register every table on `Base.metadata`."""
    import clientela.automation.models
    import clientela.commerce.models
    import clientela.customers.models
    import clientela.messaging.models
    import clientela.segments.models
    import clientela.team.models
    import clientela.tracking.models  # noqa: F401
