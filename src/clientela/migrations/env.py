"""Alembic environment: the engine comes from Clientela's settings (or the caller)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from clientela.db import Base, get_engine
from clientela.models import load_all

load_all()
target_metadata = Base.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    with get_engine().connect() as connection:
        _migrate(connection)
        connection.commit()


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run()
