from __future__ import annotations

import time

import pytest

from growbin.guard.errors import StillInProgress
from growbin.guard.idempotency import IdempotencyStore, idempotent


def test_a_key_done_once_returns_its_stored_result_and_the_effect_runs_once(store):
    keys = IdempotencyStore(store)
    effects = []
    for _ in range(3):
        with idempotent(keys, "refund:42") as slot:
            if slot.done:
                result = slot.result
            else:
                effects.append(1)
                result = '{"refunded": 42}'
                slot.save(result)
        assert result == '{"refunded": 42}'
    assert effects == [1]
    assert keys.peek("refund:42") == '{"refunded": 42}'


def test_a_key_in_progress_elsewhere_defers_for_the_rest_of_its_lock(store):
    keys = IdempotencyStore(store, lock_ttl=2.0)
    with idempotent(keys, "k"):
        with pytest.raises(StillInProgress) as info:
            keys.claim("k")
        assert 1.5 < info.value.retry_after <= 2.0
        assert "held by another run" in str(info.value)


def test_a_run_that_died_in_progress_frees_the_key_when_its_lock_expires(store):
    keys = IdempotencyStore(store, lock_ttl=0.2)
    keys.claim("k")  # never saved nor released: the worker died
    with pytest.raises(StillInProgress):
        keys.claim("k")
    time.sleep(0.25)
    assert not keys.claim("k").done


def test_an_error_in_the_block_releases_the_key_at_once(store):
    keys = IdempotencyStore(store, lock_ttl=60)
    with pytest.raises(RuntimeError), idempotent(keys, "k"):
        raise RuntimeError("the provider said 503")
    slot = keys.claim("k")
    assert not slot.done


def test_a_stale_release_never_frees_a_claim_someone_else_holds(store):
    keys = IdempotencyStore(store, lock_ttl=0.1)
    mine = keys.claim("k")
    time.sleep(0.15)  # my lock expired; another run claims the key
    theirs = keys.claim("k")
    mine.release()
    with pytest.raises(StillInProgress):
        keys.claim("k")
    theirs.save("x")
    assert keys.claim("k").result == "x"


def test_a_result_is_kept_for_its_ttl_only(store):
    keys = IdempotencyStore(store, ttl=0.2)
    keys.claim("k").save("r")
    assert keys.peek("k") == "r"
    time.sleep(0.25)
    assert keys.peek("k") is None
