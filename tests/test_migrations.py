"""Migrations that change data, run on a database holding rows written before them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from clientela.db import build_engine
from clientela.migrate import upgrade
from tests.conftest import _settings


def test_tags_become_lower_case_keeping_the_older_of_two_that_merge(tmp_path: Path):
    engine = build_engine(_settings(f"sqlite:///{tmp_path / 'old.db'}", tmp_path))
    upgrade(engine, "d68966fda90f")
    with engine.begin() as connection:
        for customer_id in (1, 2):  # the columns that had no default then
            connection.execute(text(
                "INSERT INTO customers (id, traits, trait_times, created_at, first_seen_at, "
                "last_seen_at, email_marketing, identify_count, track_count, page_count, "
                "screen_count, group_count, alias_count, orders_count, revenue_cents) VALUES "
                "(:id, '{}', '{}', :at, :at, :at, 'unknown', 0, 0, 0, 0, 0, 0, 0, 0)"),
                {"id": customer_id, "at": "2026-01-01 00:00:00"})
        connection.execute(text(
            "INSERT INTO customer_tags (customer_id, tag, created_at) VALUES "
            "(1, 'VIP', '2026-03-01 00:00:00'), (1, 'vip', '2026-02-01 00:00:00'), "
            "(1, 'Atacado', '2026-04-01 00:00:00'), (2, 'newsletter', '2026-05-01 00:00:00'),"
            "(2, 'São João', '2026-06-01 00:00:00')"))
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT customer_id, tag, created_at FROM customer_tags "
            "ORDER BY customer_id, tag")).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [
        (1, "atacado", "2026-04-01 00:00:00.000000"), (1, "vip", "2026-02-01 00:00:00.000000"),
        (2, "newsletter", "2026-05-01 00:00:00.000000"),
        (2, "são joão", "2026-06-01 00:00:00.000000")]
