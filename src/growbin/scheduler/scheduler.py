"""A Celery beat scheduler that sends only while it holds the leader lock.

Every `growbin beat` runs this scheduler; one leads, the others stand by and try the lock every
``standby_poll`` seconds. The leader renews its lock every third of ``lock_timeout`` (the tick
never sleeps past a renewal). Before each send it claims the tick in Redis (see lock.py); the
claimed last-run times are the schedule's state, so there is no local schedule file and a new
leader carries on from the old one's last send instead of from its own start.

A send the broker refuses is un-claimed and tried again after ``publish_retry`` seconds. That
is the one way a tick can be sent twice: a broker that took the message but whose confirm was
lost. Losing the lock between the claim and the send skips that tick (it stays claimed).
"""

from __future__ import annotations

import copy
import logging
import time
from datetime import UTC, datetime
from typing import Any

import redis
from celery.beat import ScheduleEntry, Scheduler

from growbin.scheduler.config import BeatConfig
from growbin.scheduler.lock import Claim, LeaderLock

logger = logging.getLogger("growbin.beat")

ENTRY_HEADER = "x-growbin-beat-entry"
RUN_AT_HEADER = "x-growbin-beat-run-at"
NODE_HEADER = "x-growbin-beat-node"


def stamp(when: datetime) -> str:
    return repr(when.timestamp())


class LeaderScheduler(Scheduler):  # type: ignore[misc]
    """Configured through ``app.growbin_beat`` (a :class:`BeatRuntime`), set by run_beat."""

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        runtime: BeatRuntime = app.growbin_beat
        self.config = runtime.config
        self.lock = runtime.lock
        self.leading = False
        self._known: dict[str, str] = {}  # entry -> the last run claimed in Redis
        self._next_renew = 0.0
        self._retry_after = 0.0
        self._told_standby = False
        kwargs["max_interval"] = min(kwargs.get("max_interval") or 300, self.config.renew_interval)
        super().__init__(app, *args, **kwargs)

    def install_default_entries(self, data: Any) -> None:
        # the topology's schedule is the whole schedule: no hidden celery.backend_cleanup
        return None

    @property
    def info(self) -> str:
        return f"leader lock {self.lock.lock_key} ({self.config.lock_timeout:g} s)"

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            if not self._keep_or_take_lead():
                return self.config.standby_poll
        except redis.RedisError as exc:
            # without Redis nobody can prove they lead, so nobody sends
            self._step_down(f"Redis is unreachable ({exc})")
            return self.config.standby_poll
        if self._retry_after:
            wait = self._retry_after - time.monotonic()
            if wait > 0:
                return min(wait, self._until_renewal())
            self._retry_after = 0.0
        try:
            delay = float(super().tick(*args, **kwargs))
        except redis.RedisError as exc:
            # a claim that cannot be checked is not sent; taking the lead again reloads
            # the last runs, so a claim that did land is not sent twice either
            self._step_down(f"Redis failed during a send ({exc})")
            return self.config.standby_poll
        return max(0.0, min(delay, self._until_renewal()))

    def _until_renewal(self) -> float:
        return max(0.0, self._next_renew - time.monotonic())

    def _keep_or_take_lead(self) -> bool:
        now = time.monotonic()
        if self.leading:
            if now < self._next_renew:
                return True
            if self.lock.renew():
                self._next_renew = now + self.config.renew_interval
                return True
            self._step_down("the lock expired or was taken")
            return False
        if not self.lock.acquire():
            if not self._told_standby:
                self._told_standby = True
                logger.warning("beat: standing by; the active scheduler is %s", self.lock.holder())
            return False
        self._told_standby = False
        self.leading = True
        self._next_renew = now + self.config.renew_interval
        self._load_last_runs()
        logger.warning(
            "beat: this scheduler is now the active one (%s, token %s)",
            self.lock.lock_key,
            self.lock.token,
        )
        return True

    def _load_last_runs(self) -> None:
        stored = self.lock.last_runs()
        self._known = {}
        for name, entry in self.schedule.items():
            raw = stored.get(name, "")
            self._known[name] = raw
            if raw:
                entry.last_run_at = datetime.fromtimestamp(float(raw), UTC)
        self._heap = None  # rebuilt from the loaded times at the next tick

    def _step_down(self, why: str) -> None:
        if self.leading:
            logger.warning("beat: standing by: %s", why)
            self._told_standby = True
        self.leading = False
        self._known = {}

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        """Claim the tick, then send it; ``entry`` is the entry before the tick advanced it."""
        advanced = self.schedule[entry.name]
        known = self._known.get(entry.name, "")
        new = stamp(advanced.last_run_at)
        outcome = self.lock.claim(entry.name, known, new)
        if outcome is not Claim.CLAIMED:
            self._lost_claim(entry.name, outcome)
            return
        self._known[entry.name] = new
        fire = copy.copy(entry)
        fire.options = {
            **entry.options,
            "headers": {
                **entry.options.get("headers", {}),
                ENTRY_HEADER: entry.name,
                RUN_AT_HEADER: new,
                NODE_HEADER: self.lock.token,
            },
        }
        logger.info("beat: sending %s (%s)", entry.name, entry.task)
        try:
            self.apply_async(fire, producer=producer, advance=False)
        except Exception as exc:
            self._unclaim(entry, new, known, exc)

    def _lost_claim(self, name: str, outcome: Claim) -> None:
        self._heap = None
        if outcome is Claim.NOT_LEADER:
            self._step_down(f"lost the lock before sending {name}")
            return
        logger.warning("beat: %s was already sent by another scheduler; not sending it", name)
        self._load_last_runs()

    def _unclaim(self, entry: ScheduleEntry, new: str, known: str, exc: Exception) -> None:
        if self.lock.claim(entry.name, new, known) is Claim.CLAIMED:
            self._known[entry.name] = known
            self.schedule[entry.name] = entry  # due again: retried after publish_retry
            self._heap = None
            self._retry_after = time.monotonic() + self.config.publish_retry
            logger.error(
                "beat: could not send %s (%s); trying again in %g s",
                entry.name,
                exc,
                self.config.publish_retry,
            )
        else:
            logger.error(
                "beat: could not send %s (%s) and lost the lock: tick skipped", entry.name, exc
            )

    def close(self) -> None:
        try:
            if self.leading:
                # hand over at once instead of making the standby wait out the lock
                self.lock.release()
                self.leading = False
        except redis.RedisError:
            pass
        super().close()


class BeatRuntime:
    """What LeaderScheduler needs, attached to the app (Celery builds the scheduler itself)."""

    def __init__(self, config: BeatConfig, lock: LeaderLock) -> None:
        self.config = config
        self.lock = lock
