"""Shorter turns on the GIL while a thread that waits on sockets works beside busy ones.

Python makes a thread that wants the GIL wait until the holder has run for the switch
interval (5 ms by default) before taking it. The thread that renders a campaign's next
batch keeps the GIL that long every time, so the event loop waiting on SMTP replies lost
up to 5 ms per reply: sending spent most of its time there. With turns of half a
millisecond the loop goes on almost at once; the busy thread loses only a few microseconds
per handover. (The ingestion writer process, tried the same way, gained nothing.)
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

RESPONSIVE_SECONDS = 0.0005

_lock = threading.Lock()
_holders = 0
_before = sys.getswitchinterval()


@contextmanager
def responsive_switching() -> Iterator[None]:
    """Turns of RESPONSIVE_SECONDS (if shorter than the process's) until the last of the
    blocks that asked for them ends."""
    global _holders, _before
    with _lock:
        if _holders == 0:
            _before = sys.getswitchinterval()
            sys.setswitchinterval(min(_before, RESPONSIVE_SECONDS))
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                sys.setswitchinterval(_before)
