"""The Huey queue and what it runs on schedule.

The queue lives in a SQLite file under DATA_DIR (one machine) or in Redis when
CLIENTELA_REDIS_URL is set (workers on several hosts). Domains keep their jobs as plain
functions in their `tasks.py`; this module is the one place that schedules them, so domains
never import Huey.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.api import TaskWrapper
from sqlalchemy import Engine

from clientela.analytics import tasks as analytics_tasks
from clientela.automation import tasks as automation_tasks
from clientela.commerce import tasks as commerce_tasks
from clientela.config import Settings
from clientela.db import build_engine
from clientela.messaging import tasks as messaging_tasks
from clientela.segments import tasks as segment_tasks

log = logging.getLogger(__name__)

Job = Callable[..., Any]
# (name, when, job): every job takes the engine and settings as keyword arguments.
SCHEDULE: tuple[tuple[str, crontab, Job], ...] = (
    ("commerce.abandon_idle_carts", crontab(minute="*"), commerce_tasks.abandon_idle_carts),
    ("segments.refresh_segments", crontab(minute="*"), segment_tasks.refresh_segments),
    ("segments.recompute_segments", crontab(minute="*/15"),
     segment_tasks.recompute_segments),
    ("messaging.send_campaigns", crontab(minute="*"), messaging_tasks.send_campaigns),
    ("messaging.read_bounces", crontab(minute="*"), messaging_tasks.read_bounces),
    ("automation.run_scenarios", crontab(minute="*"), automation_tasks.run_scenarios),
    ("analytics.compute_rfm", crontab(minute="15", hour="3"), analytics_tasks.compute_rfm),
    ("analytics.refresh_predictions", crontab(minute="30", hour="3"),
     analytics_tasks.refresh_predictions),
)


@dataclass(frozen=True)
class Queue:
    huey: Huey
    scheduled: dict[str, TaskWrapper]


def create_queue(settings: Settings) -> Queue:
    """The queue for these settings, with the scheduled jobs registered on it."""
    if settings.redis_url:
        huey: Huey = RedisHuey("clientela", url=settings.redis_url, utc=True, results=False)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(
            "clientela", filename=str(settings.data_dir / "worker.db"), results=False, utc=True
        )
    engine = build_engine(settings)
    return Queue(
        huey,
        {
            name: huey.periodic_task(when, name=name)(_bound(job, engine, settings, name))
            for name, when, job in SCHEDULE
        },
    )


def _bound(job: Job, engine: Engine, settings: Settings, name: str) -> Callable[[], Any]:
    def run() -> Any:
        result = job(engine=engine, settings=settings)
        log.info("%s: %s", name, result)
        return result

    run.__name__ = name.replace(".", "_")
    return run
