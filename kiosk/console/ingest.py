"""MQTT ingest: what the kiosks publish (status, health, acks, command results) into the console's database.

paho's network thread only parses the topic and queues; one writer thread takes
everything that has arrived and writes it in one transaction, so 10,000 kiosks'
health reports cost a few hundred transactions a minute, not 10,000. Retained messages
arrive again on every (re)connect: writes are idempotent (upserts, acks keyed by
kiosk, version and time, results by command and kiosk).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any

from kiosk.console.db import ConsoleDB
from kiosk.fleet.transport import make_client

log = logging.getLogger(__name__)

TOPICS = [("qhb/kiosk/+/status", 1), ("qhb/kiosk/+/health", 1), ("qhb/kiosk/+/ack", 1), ("qhb/kiosk/+/result", 1)]
KINDS = {"status", "health", "ack", "result"}
BATCH_MAX = 2000


class Ingest:
    """`start()`, then `stop()`; `received` and `written` count messages (tests and the benchmark)."""

    def __init__(self, db: ConsoleDB, broker_url: str, *, client_id: str | None = None, **client_kw: Any):
        self.db = db
        self.client, self.addr = make_client(broker_url, client_id=client_id, **client_kw)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._q: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.received = 0
        self.by_kind: dict[str, int] = {}  # messages received per kind (status, health, ack, result)
        self.written = 0
        self.failed_batches = 0

    def start(self) -> Ingest:
        self.client.connect_async(self.addr.host, self.addr.port, keepalive=30)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._writer, name="console-ingest", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def publish(self, topic: str, payload: bytes, retain: bool = True) -> None:
        """The console's own publications (rollout stages, forwarded commands) share this connection."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(30)

    # ------------------------------------------------------------------ network thread
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the console", extra={"reason": str(reason_code)})
            return
        client.subscribe(TOPICS)
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 4 or parts[3] not in KINDS or not msg.payload:
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(doc, dict):
            self.received += 1
            self.by_kind[parts[3]] = self.by_kind.get(parts[3], 0) + 1
            self._q.put((parts[3], parts[2], doc))

    # ------------------------------------------------------------------ writer thread
    def _writer(self) -> None:
        while not self._stop.is_set() or not self._q.empty():
            try:
                first = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            try:
                self.db.ingest(batch)
            except Exception:  # noqa: BLE001 - logged; the next batch may well succeed (database restart)
                log.exception("console ingest batch failed")
                self.failed_batches += 1
                time.sleep(1.0)
            self.written += len(batch)

    def wait_drained(self, timeout: float = 30.0) -> bool:
        """Everything received so far is written (tests, the benchmark)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._q.empty() and self.written >= self.received:
                return True
            time.sleep(0.05)
        return False
