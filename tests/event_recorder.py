"""Collects a device adapter's events so a test can wait for them (shared by the device test rooms)."""
from __future__ import annotations

import threading


class Events:
    def __init__(self, dev):
        self.got = []
        self.cond = threading.Condition()
        dev.add_listener(self)

    def __call__(self, ev):
        with self.cond:
            self.got.append(ev)
            self.cond.notify_all()

    def wait(self, kind, n=1, timeout=20):
        with self.cond:
            return self.cond.wait_for(lambda: self.count(kind) >= n, timeout)

    def count(self, kind):
        return sum(e.kind == kind for e in self.got)

    def of(self, kind):
        return [e for e in self.got if e.kind == kind]
