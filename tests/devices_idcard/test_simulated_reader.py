"""The simulated reader: same contract and codec, card inserted by code."""
from __future__ import annotations

import queue

from devices.base import EventKind
from devices.diagnostics import diagnostics
from kiosk.bootstrap import drivers
from standins.sam_emulator import sample_card


def test_simulated_reader_poll_and_diagnostics():
    dev = drivers.create("idcard", {"driver": "simulated", "poll_interval_s": 0.02})
    q: queue.Queue = queue.Queue()
    dev.add_listener(lambda e: q.put(e) if e.kind in (EventKind.CARD_INSERTED, EventKind.CARD_REMOVED) else None)
    with dev:
        dev.start_polling()
        dev.insert_card()
        ev = q.get(timeout=10)
        assert ev.kind == EventKind.CARD_INSERTED and ev.payload["card"] == sample_card()
        dev.remove_card()
        assert q.get(timeout=10).kind == EventKind.CARD_REMOVED
        d = diagnostics(dev, run_health="external")
    assert d["driver"] == "simulated" and d["last_health"]["ok"]
    assert d["statistics"]["operations"] == 1 and "read_ms" in d["statistics"]
    assert sample_card().id_number not in str(d)
