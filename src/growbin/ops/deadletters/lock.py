"""One dead-letter command per queue at a time, through a PostgreSQL advisory lock.

While a command holds the queue's messages unacked, another reader would see an emptier queue
and wrongly mark the missing ones dropped (and a replay from the archive would then duplicate a
task). The lock lives in PostgreSQL because every dead-letter command needs it anyway.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from growbin.db.engine import translate_errors
from growbin.ops.deadletters.errors import DeadLetterBusyError

POLL_SECONDS = 0.2


def lock_key(vhost: str, queue: str) -> int:
    """A stable signed 64-bit key (what pg_advisory_lock takes) for one queue of one vhost."""
    digest = hashlib.sha256(f"growbin.dlq\x00{vhost}\x00{queue}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def queue_lock(engine: Engine, vhost: str, queue: str, *, timeout: float = 30.0) -> Iterator[None]:
    """Hold the queue's lock for the block; wait up to ``timeout`` seconds for it."""
    key = lock_key(vhost, queue)
    deadline = time.monotonic() + timeout
    with translate_errors(engine), engine.connect() as conn:
        while not conn.execute(select(func.pg_try_advisory_lock(key))).scalar_one():
            conn.commit()
            if time.monotonic() >= deadline:
                raise DeadLetterBusyError(
                    f"another growbin dlq command is working on {queue} in vhost {vhost!r} "
                    f"(waited {timeout:.0f} s): run this one again when it has finished"
                )
            time.sleep(POLL_SECONDS)
        # a session-level lock outlives the transaction; end it so the connection is not
        # left idle in a transaction while the command runs
        conn.commit()
        try:
            yield
        finally:
            try:
                conn.execute(select(func.pg_advisory_unlock(key)))
                conn.commit()
            except SQLAlchemyError:
                pass  # the connection is gone, and a session-level lock goes with it
