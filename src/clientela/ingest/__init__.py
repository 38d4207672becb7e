"""Getting validated calls into the database: the group-commit writer, the writer process
for SQLite, and the socket between HTTP workers and that process."""

from __future__ import annotations

from typing import Protocol

from clientela.tracking.service import Recorded
from clientela.tracking.store import PendingEvent


class EventSink(Protocol):
    """Where the ingestion endpoints hand validated calls; `submit` answers once committed."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    async def submit(self, source_id: int, events: list[PendingEvent]) -> Recorded: ...
