"""The administrator's view of the fleet, read from the broker's retained messages.

`snapshot()` subscribes to every kiosk's status/health/ack and the retained
bundles, then publishes a marker to a private topic: when the marker comes back,
everything retained before it has been delivered (one connection, in order), so
the view is complete without guessing a wait time.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kiosk.fleet.bundle import BundleError, parse_bundle
from kiosk.fleet.transport import make_client, publish_retained, topic_for_target


@dataclass
class KioskView:
    kiosk_id: str
    status: dict[str, Any] | None = None
    health: dict[str, Any] | None = None
    ack: dict[str, Any] | None = None

    @property
    def group(self) -> str | None:
        for doc in (self.health, self.status):
            if doc and doc.get("group"):
                return doc["group"]
        return None

    @property
    def online(self) -> bool | None:
        return None if self.status is None else bool(self.status.get("online"))

    def row(self, now: float) -> dict[str, Any]:
        h = self.health or {}
        q = h.get("queue") or {}
        ts = h.get("ts")
        return {
            "kiosk": self.kiosk_id,
            "group": self.group,
            "online": self.online,
            "last_heartbeat": h.get("at"),
            "heartbeat_age_s": round(now - ts, 1) if isinstance(ts, (int, float)) else None,
            "config_version": h.get("config_version", (self.ack or {}).get("config_version")),
            "queue_depth": q.get("depth") if q.get("available", True) else None,
            "device_faults": h.get("device_faults", []),
            "restart_pending": bool(h.get("restart_pending")),
        }


@dataclass
class FleetSnapshot:
    kiosks: dict[str, KioskView] = field(default_factory=dict)
    bundles: dict[str, bytes] = field(default_factory=dict)  # topic -> retained bundle
    complete: bool = False

    def view(self, kiosk_id: str) -> KioskView:
        return self.kiosks.setdefault(kiosk_id, KioskView(kiosk_id))

    def status_rows(self) -> list[dict[str, Any]]:
        now = time.time()
        return [self.kiosks[k].row(now) for k in sorted(self.kiosks)]

    def targets_of(self, version: int) -> list[str] | None:
        for raw in self.bundles.values():
            try:
                b = parse_bundle(raw, max_bytes=1 << 30)
            except BundleError:
                continue
            if b.version == version:
                return b.targets
        return None

    def acks(self, version: int) -> dict[str, Any]:
        """Who applied `version`, who refused it and why, who has not answered."""
        targets = self.targets_of(version)

        def expected(v: KioskView) -> bool:
            if targets is None:
                return True
            return "all" in targets or f"kiosk:{v.kiosk_id}" in targets or (
                v.group is not None and f"group:{v.group}" in targets)

        applied, refused, silent = [], [], []
        for kid in sorted(self.kiosks):
            v = self.kiosks[kid]
            entries = [e for e in ((v.ack or {}).get("recent") or []) if e.get("version") == version]
            if v.ack and v.ack.get("version") == version and not entries:
                entries = [v.ack]
            if entries:
                e = entries[-1]
                if e.get("result") == "applied":
                    applied.append({"kiosk": kid, "at": e.get("at")})
                else:
                    refused.append({"kiosk": kid, "result": e.get("result"), "reason": e.get("reason"),
                                    "at": e.get("at")})
            elif expected(v):
                silent.append({"kiosk": kid, "online": v.online,
                               "config_version": (v.health or {}).get("config_version")})
        return {"version": version, "targets": targets, "applied": applied, "refused": refused,
                "not_answered": silent}


def snapshot(url: str, *, timeout: float = 10.0, **client_kw: Any) -> FleetSnapshot:
    snap = FleetSnapshot()
    marker_topic = f"qhb/admin/{uuid.uuid4().hex}/sync"
    marker = uuid.uuid4().hex.encode()
    done = threading.Event()
    client, addr = make_client(url, **client_kw)

    refused: list[str] = []

    def on_connect(c, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            refused.append(str(reason_code))
            done.set()
            return
        c.subscribe([("qhb/kiosk/+/status", 1), ("qhb/kiosk/+/health", 1), ("qhb/kiosk/+/ack", 1),
                     ("qhb/config/#", 1), (marker_topic, 1)])

    def on_subscribe(c, userdata, mid, reason_codes, properties):
        c.publish(marker_topic, marker, qos=1)

    def on_message(c, userdata, msg):
        if msg.topic == marker_topic:
            if msg.payload == marker:
                snap.complete = True
                done.set()
            return
        parts = msg.topic.split("/")
        if parts[1] == "config":
            if msg.payload:
                snap.bundles[msg.topic] = bytes(msg.payload)
            return
        if len(parts) != 4 or not msg.payload:
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(doc, dict) and parts[3] in ("status", "health", "ack"):
            setattr(snap.view(parts[2]), parts[3], doc)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect(addr.host, addr.port, keepalive=30)
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    if refused:
        raise ConnectionError(f"the broker at {url} refused the connection: {refused[0]}")
    if not snap.complete:
        raise ConnectionError(f"no complete answer from the broker at {url} within {timeout:.0f} s")
    return snap


def push(url: str, raw: bytes, *, timeout: float = 30.0, **client_kw: Any) -> list[str]:
    """Publish a bundle retained (QoS 1) on the topic of each of its targets; returns the topics."""
    bundle = parse_bundle(raw, max_bytes=1 << 30)
    topics = sorted({topic_for_target(t) for t in bundle.targets})
    return publish_retained(url, topics, raw, timeout=timeout, **client_kw)
