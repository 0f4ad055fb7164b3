"""The drainer's background loop: hourly purge, waits from the next due record, errors logged and survived,
start and stop. The loop is driven on a fake clock; its waits are recorded instead of slept."""
from __future__ import annotations

import logging
import threading

import pytest

from kiosk.ports.outbox import OutboxKeyError
from offline_cache.drainer import DEFER_S, Drainer, open_outbox
from tests.platform.samples import application_payload


class FakeClock:
    def __init__(self, t: float = 10_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class RecordingWake:
    """Stands in for the drainer's wake-up event: records each wait's timeout and returns at once."""

    def __init__(self):
        self.waits: list[float] = []
        self.clears = 0
        self.sets = 0

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return False

    def clear(self):
        self.clears += 1

    def set(self):
        self.sets += 1


class NoPlatform:
    kiosk_id = "qhb-test"


def looping_drainer(outbox, clock, passes, on_pass=None):
    """A drainer whose drain passes are counted (and optionally replaced); stops after `passes` passes."""
    d = Drainer(outbox, NoPlatform(), clock=clock, retention_s=1234.0)
    d._wake = RecordingWake()
    stop = threading.Event()
    count = [0]

    def drain_once(ignore_backoff=False):
        count[0] += 1
        if on_pass is not None:
            on_pass(count[0])
        if count[0] >= passes:
            stop.set()

    d.drain_once = drain_once
    return d, stop, count


def test_purge_runs_on_the_first_pass_and_then_once_an_hour(outbox, monkeypatch):
    clock = FakeClock(10_000.0)
    purges = []
    monkeypatch.setattr(outbox, "purge", lambda retention_s, now=None: purges.append((retention_s, clock.t)) or 0)
    times = {1: 10_000.0, 2: 13_600.0, 3: 13_601.0, 4: 14_000.0}

    def on_pass(n):
        clock.t = times[n]

    d, stop, count = looping_drainer(outbox, clock, passes=4, on_pass=on_pass)
    d.run(poll_s=7.0, stop=stop)
    assert count[0] == 4
    assert purges == [(1234.0, 10_000.0), (1234.0, 13_601.0)]  # exactly an hour later is not yet "over an hour"


def test_the_loop_waits_the_poll_when_nothing_is_due_and_until_the_next_due_record_otherwise(outbox):
    clock = FakeClock(10_000.0)
    rid = outbox.enqueue("application", application_payload())
    [rec] = outbox.claim_next(1, now=clock.t)
    steps = {
        1: lambda: outbox.mark_retry(rid, "HTTP 503", clock.t + 2.5),   # due in 2.5 s: wait 2.5
        2: lambda: outbox.mark_retry(rid, "HTTP 503", clock.t + 60.0),  # due after the poll: wait the poll
        3: lambda: outbox.mark_retry(rid, "HTTP 503", clock.t - 30.0),  # overdue: the shortest wait
        4: lambda: outbox.mark_done(rid, "SD261127ABCDEFGH0"),            # nothing pending: the poll
    }

    def on_pass(n):
        outbox._db.execute("UPDATE records SET state='inflight' WHERE id=?", (rid,))
        steps[n]()

    d, stop, _ = looping_drainer(outbox, clock, passes=4, on_pass=on_pass)
    d.run(poll_s=7.0, stop=stop)
    assert d._wake.waits == [2.5, 7.0, 0.05, 7.0]
    assert d._wake.clears == 4


def test_a_failing_pass_is_logged_with_its_traceback_and_the_loop_goes_on(outbox, caplog):
    clock = FakeClock()

    def on_pass(n):
        if n == 1:
            raise OSError("database or disk is full")

    d, stop, count = looping_drainer(outbox, clock, passes=2, on_pass=on_pass)
    with caplog.at_level(logging.ERROR, logger="offline_cache.drainer"):
        d.run(poll_s=7.0, stop=stop)
    assert count[0] == 2
    [rec] = [r for r in caplog.records if r.getMessage() == "outbox drain pass failed"]
    # the type only: once the kiosk's log handlers are installed, their redaction keeps no raw value on the record
    assert rec.exc_info and issubclass(rec.exc_info[0], OSError)


def test_start_runs_the_loop_in_a_named_daemon_thread_with_the_given_poll_and_stop_ends_it(outbox):
    d = Drainer(outbox, NoPlatform())
    seen = []
    entered = threading.Event()

    def run(poll_s=5.0, stop=None):
        seen.append((poll_s, stop))
        entered.set()
        while not d._stop.is_set():
            d._wake.wait(3600)  # only stop() (which wakes it) ends this
            d._wake.clear()

    d.run = run
    t = d.start(poll_s=0.25)
    assert entered.wait(30)
    assert t.daemon and t.name == "outbox-drainer" and t.is_alive()
    assert seen == [(0.25, None)]
    d.stop(timeout=30)
    t.join(30)
    assert not t.is_alive() and d._stop.is_set()


def test_stop_wakes_a_sleeping_loop(outbox):
    d = Drainer(outbox, NoPlatform())
    d.drain_once = lambda ignore_backoff=False: None
    t = d.start(poll_s=3600)  # asleep for an hour unless woken
    d.stop(timeout=60)
    assert not t.is_alive()


def test_the_configured_outbox_opens_with_its_key_and_never_creates_one_over_a_queue(tmp_path, monkeypatch):
    from kiosk.config import load_config
    monkeypatch.delenv("KIOSK_STORAGE_KEY", raising=False)
    key_file = tmp_path / "k.key"
    cfg = load_config(cli={"storage": {"data_dir": str(tmp_path / "data"), "key_file": str(key_file)}})
    with pytest.raises(OutboxKeyError):
        open_outbox(cfg)  # a tool never creates the key
    assert not key_file.exists()
    with open_outbox(cfg, create_key=True) as ob:
        assert ob.path == tmp_path / "data" / "outbox.db"
        ob.enqueue("application", application_payload())
    with open_outbox(cfg) as ob:
        assert ob.stats()["pending"] == 1
    other_db = tmp_path / "elsewhere.db"
    with open_outbox(cfg, db=other_db) as ob:
        assert ob.path == other_db and ob.stats()["pending"] == 0
    with open_outbox(cfg, key_file=tmp_path / "nope.key", db=tmp_path / "third.db", create_key=True) as ob:
        assert (tmp_path / "nope.key").exists()
    key_file.unlink()
    with pytest.raises(OutboxKeyError, match="missing"):
        open_outbox(cfg, create_key=True)
    assert DEFER_S > 0


def test_stop_gives_up_waiting_for_a_stuck_loop_after_its_timeout(outbox):
    d = Drainer(outbox, NoPlatform())
    release = threading.Event()
    d.run = lambda poll_s=5.0, stop=None: release.wait(600)  # a pass stuck in a hung request
    t = d.start()
    d.stop(timeout=0.2)  # returns (shutdown goes on) instead of hanging with the loop
    assert t.is_alive() and d._stop.is_set()
    release.set()
    t.join(30)
