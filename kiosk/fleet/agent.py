"""The kiosk's MQTT agent: receive signed bundles, apply or refuse them, report health.

The network loop (paho, own thread) only queues messages; one worker thread
verifies and applies them in version order so a slow health check never stalls
keep-alives. A message over the size limit is dropped before anything parses it
(and acknowledged ``too_large``), and the work queue is bounded: when it is full
the oldest message is dropped with a log line (retained bundles come back on the
next reconnect). The kiosk works on its current configuration whenever the broker is
away; paho reconnects with exponential backoff, and because every subscription is
made again on connect, retained bundles bring a returning kiosk up to date.
"""
from __future__ import annotations

import hashlib
import json
import logging
import queue
import random
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.config import ConfigError
from kiosk.fleet import boot_guard
from kiosk.fleet.apply import ConfigApplier, HealthCheck
from kiosk.fleet.bounded_queue import put_dropping_oldest
from kiosk.fleet.bundle import BundleError, parse_bundle
from kiosk.fleet.commands import CommandChannel, CommandExecutor, is_command_topic, thresholds_from
from kiosk.fleet.health import HealthProviders, HealthReporter, OutboxOpener, utc_now_iso
from kiosk.fleet.transport import ack_topic, config_topics, health_topic, make_client, status_topic
from kiosk.fleet.trust import read_json
from kiosk.fleet.verify import TrustPolicy
from kiosk.infra import systemd
from kiosk.infra.atomic_file import atomic_write_json
from kiosk.infra.logs import setup_logging

log = logging.getLogger(__name__)

SEEN_FILE = "seen.json"
SEEN_MAX = 200
HISTORY_MAX = 10
WORK_MAX = 32  # queued messages; at most WORK_MAX x max_bundle_bytes held while the worker is busy


class KioskAgent:
    """One kiosk's fleet connection. `start()`, then `stop()`; everything else runs in threads."""

    def __init__(
        self,
        site_file: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        providers: HealthProviders | None = None,
        open_outbox: OutboxOpener | None = None,
        health_check: HealthCheck | None = None,
        on_live_change: Callable[[Any, list[str]], None] | None = None,
        on_restart_needed: Callable[[list[str]], None] | None = None,
        command_executor: CommandExecutor | None = None,
    ):
        self._on_live = on_live_change
        self._on_restart = on_restart_needed
        self.applier = ConfigApplier(site_file, env=env, health_check=health_check,
                                     on_live_change=self._live_changed, on_restart_needed=self._restart_needed)
        self.applier.recover()
        self.config = self.applier.effective().config
        fleet = self.config.fleet
        self.kiosk_id, self.group = self.config.kiosk.id, self.config.kiosk.group
        self.policy = TrustPolicy.from_config(self.config)
        # without providers (standalone agent) the queue figures need ``open_outbox`` from the composition root
        self.reporter = HealthReporter(self.config, providers or HealthProviders.defaults(self.config, open_outbox))
        self.restart_pending: list[str] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._work: queue.Queue[bytes] = queue.Queue(maxsize=WORK_MAX)
        self.dropped = 0  # messages dropped: over the size limit, or the oldest of a full queue
        self._boot_report_lock = threading.Lock()
        # not_yet_valid bundles, re-checked on each tick
        self._pending_future: dict[str, tuple[bytes, datetime | None]] = {}
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, dict[str, Any]] = OrderedDict(
            (d["digest"], d) for d in (read_json(self.applier.state_dir / SEEN_FILE) or []) if "digest" in d)
        self.history: list[dict[str, Any]] = list(self._seen.values())[-HISTORY_MAX:]
        self.processed = 0  # bundles handled since start (tests and --once)

        password = None
        if fleet.password_file:
            password = Path(self.config.resolve_path(fleet.password_file)).read_text(encoding="utf-8").strip()
        r = self.config.resolve_path
        self.client, self.addr = make_client(
            fleet.broker_url, client_id=f"qhb-kiosk-{self.kiosk_id}", username=fleet.username, password=password,
            tls_ca=str(r(fleet.tls_ca)) if fleet.tls_ca else None,
            tls_cert=str(r(fleet.tls_cert)) if fleet.tls_cert else None,
            tls_key=str(r(fleet.tls_key)) if fleet.tls_key else None,
        )
        self.client.will_set(status_topic(self.kiosk_id), self._status_doc(False), qos=1, retain=True)
        # A random first delay per kiosk: after a broker restart, 10,000 kiosks must not reconnect in lockstep.
        max_delay = max(1.0, fleet.reconnect_max_s)
        # paho's stubs say int; its loop compares seconds and takes floats (the random first delay needs them)
        self.client.reconnect_delay_set(min_delay=min(random.uniform(1.0, 3.0), max_delay),  # type: ignore[arg-type]
                                        max_delay=max_delay)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._threads: list[threading.Thread] = []
        # signed remote commands (kiosk.fleet.commands): verified here, carried out by the executor
        self.commands = CommandChannel(kiosk_id=self.kiosk_id, group=self.group, policy=self.policy,
                                       thresholds=thresholds_from(fleet.command_thresholds),
                                       state_dir=self.applier.state_dir, executor=command_executor,
                                       publish=self._publish_retained)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.client.connect_async(self.addr.host, self.addr.port, keepalive=30)
        self.client.loop_start()
        for target, name in ((self._worker, "fleet-worker"), (self._ticker, "fleet-health")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self.commands.start()

    def alive(self) -> bool:
        """For the systemd watchdog: our own threads are still running."""
        return all(t.is_alive() for t in self._threads) and self.commands.alive()

    def stop(self) -> None:
        self._stop.set()
        self.commands.stop()
        if self.connected.is_set():  # a clean goodbye; the will covers crashes
            info = self.client.publish(status_topic(self.kiosk_id), self._status_doc(False), qos=1, retain=True)
            try:
                info.wait_for_publish(3)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
        for t in self._threads:
            t.join(timeout=10)

    # ------------------------------------------------------------ callbacks (network thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection", extra={"reason": str(reason_code)})
            return
        client.subscribe([(t, 1) for t in config_topics(self.kiosk_id, self.group) + self.commands.topics()])
        client.publish(status_topic(self.kiosk_id), self._status_doc(True), qos=1, retain=True)
        self.connected.set()
        self._report_boot_failure()
        self._publish_health()
        log.info("fleet broker connected", extra={"host": self.addr.host})

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("fleet broker lost; working on the current configuration", extra={"reason": str(reason_code)})

    def _on_message(self, client, userdata, msg) -> None:
        if not msg.payload:  # an empty retained message only clears a topic
            return
        if len(msg.payload) > self.policy.max_bytes:  # dropped before anything parses it
            self._refuse_oversize(msg.payload, msg.topic)
        elif is_command_topic(msg.topic):
            self.commands.receive(bytes(msg.payload), bool(msg.retain))
        else:
            self._enqueue(bytes(msg.payload))

    def _enqueue(self, raw: bytes) -> None:
        """Bounded: a full queue drops its oldest message (logged) to make room."""
        dropped = put_dropping_oldest(self._work, raw)
        if dropped:
            self.dropped += dropped
            log.warning("fleet work queue full; oldest message dropped", extra={"limit": WORK_MAX})

    def _refuse_oversize(self, payload: bytes, topic: str) -> None:
        self.dropped += 1
        log.warning("fleet message over the size limit dropped unparsed",
                    extra={"bytes": len(payload), "limit": self.policy.max_bytes, "topic": topic})
        if is_command_topic(topic):
            return  # commands answer on their own topic; an unreadable one has nothing to answer
        digest = hashlib.sha256(payload).hexdigest()
        with self._lock:
            if digest in self._seen:
                return
        self._ack(digest, {"version": None, "reason": "too_large", "result": "refused",
                           "detail": f"{len(payload)} bytes, limit {self.policy.max_bytes}"}, remember=True)

    # ------------------------------------------------------------ worker
    def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._work.get(timeout=0.5)
            except queue.Empty:
                continue
            time.sleep(0.2)  # let a burst of retained bundles arrive, then take them oldest first
            batch = [first]
            while True:
                try:
                    batch.append(self._work.get_nowait())
                except queue.Empty:
                    break
            for raw in sorted(batch, key=_version_or_zero):
                try:
                    self.handle(raw)
                except Exception:
                    log.exception("bundle handling failed")

    def handle(self, raw: bytes) -> dict[str, Any] | None:
        """Verify, apply, acknowledge one received bundle. Returns the ack (None: already answered)."""
        digest = hashlib.sha256(raw).hexdigest()
        with self._lock:
            if digest in self._seen:
                return None
        verdict = self.applier.verify(raw, self.policy)
        if verdict.reason == "not_yet_valid":  # answered once, re-checked when it becomes valid
            already = digest in self._pending_future
            self._pending_future[digest] = (raw, verdict.bundle_not_before)
            if already:
                return None
        else:
            self._pending_future.pop(digest, None)
        ack: dict[str, Any] = {"version": verdict.version, "reason": verdict.reason, "detail": verdict.detail[:300]}
        if verdict.accepted:
            result = self.applier.apply(verdict.bundle, raw)
            ack.update(result=result.status, reason=result.reason,
                       live_keys=result.live_keys, restart_keys=result.restart_keys)
            if result.problems:
                ack["detail"] = "; ".join(result.problems)[:300]
        else:
            ack["result"] = "refused"
        self._ack(digest, ack, remember=verdict.reason != "not_yet_valid")
        self.processed += 1
        self._publish_health()
        return ack

    def _ack(self, digest: str, ack: dict[str, Any], remember: bool) -> None:
        ack = {"kiosk_id": self.kiosk_id, **ack, "at": utc_now_iso(),
               "config_version": self.applier.trust.current_version()}
        with self._lock:
            entry = {k: ack[k] for k in ("version", "result", "reason", "at")} | {"digest": digest}
            if remember:
                self._seen[digest] = entry
                while len(self._seen) > SEEN_MAX:
                    self._seen.popitem(last=False)
                atomic_write_json(self.applier.state_dir / SEEN_FILE, list(self._seen.values()))
            self.history = (self.history + [entry])[-HISTORY_MAX:]
            ack["recent"] = [{k: e[k] for k in ("version", "result", "reason", "at")} for e in self.history]
        self.client.publish(ack_topic(self.kiosk_id), json.dumps(ack, ensure_ascii=False), qos=1, retain=True)
        log.info("bundle %s", ack["result"], extra={"version": ack["version"], "reason": ack["reason"]})

    def _report_boot_failure(self) -> None:
        """A restart-key layer that never reached READY was undone (kiosk.fleet.boot_guard): say so once."""
        with self._boot_report_lock:
            report = boot_guard.failure_report(self.applier.state_dir)
            if report is None or not self.connected.is_set():
                return
            version = report.get("version")
            with self._lock:
                digest = next((d for d, e in self._seen.items() if e.get("version") == version), f"boot-v{version}")
            self._ack(digest, {"version": version, "result": "rolled_back", "reason": "restart_failed",
                               "detail": boot_guard.describe(report)[:300]}, remember=True)
            boot_guard.clear_failure(self.applier.state_dir)

    # ------------------------------------------------------------ live changes and restarts
    def _live_changed(self, cfg: Any, keys: list[str]) -> None:
        self.config = cfg
        if self._on_live:
            self._on_live(cfg, keys)

    def _restart_needed(self, keys: list[str]) -> None:
        self.restart_pending = sorted(set(self.restart_pending) | set(keys))
        if self._on_restart:
            self._on_restart(keys)

    # ------------------------------------------------------------ health
    def _status_doc(self, online: bool) -> str:
        return json.dumps({"kiosk_id": self.kiosk_id, "group": self.group, "online": online, "at": utc_now_iso()})

    def health_report(self) -> dict[str, Any]:
        return self.reporter.report(config_version=self.applier.trust.current_version(),
                                    active_version=self.applier.active_version(),
                                    restart_pending=self.restart_pending)

    def _publish_retained(self, topic: str, payload: bytes) -> None:
        """A command result: retained QoS 1, waited for briefly (a reboot may follow it)."""
        info = self.client.publish(topic, payload, qos=1, retain=True)
        if self.connected.is_set():
            try:
                info.wait_for_publish(5)
            except (RuntimeError, ValueError):
                pass

    def _publish_health(self) -> None:
        if not self.connected.is_set():
            return  # nothing piles up while offline; the next tick after reconnecting reports
        doc = self.health_report()
        self.client.publish(health_topic(self.kiosk_id), json.dumps(doc, ensure_ascii=False), qos=1, retain=True)

    def _ticker(self) -> None:
        interval = self.config.fleet.health_interval_s
        while not self._stop.wait(interval):
            try:
                self._publish_health()
                now = datetime.now(UTC)
                for raw, not_before in list(self._pending_future.values()):
                    if not_before is None or now >= not_before:
                        self._enqueue(raw)
                self._report_boot_failure()
            except Exception:
                log.exception("health report failed")


def _version_or_zero(raw: bytes) -> int:
    try:
        return parse_bundle(raw).version  # the default limit: only messages under it are ever queued
    except BundleError:
        return 0  # malformed: handle() refuses it with its reason
    except Exception:  # noqa: BLE001 - logged; ordering a batch must never stop the worker
        log.exception("bundle version unreadable")
        return 0


def run_agent(site_file: str | None = None, *, once: bool = False, open_outbox: OutboxOpener | None = None) -> int:
    """Foreground agent for `kiosk fleet agent`: sd_notify READY and watchdog, SIGTERM stops it.

    ``open_outbox`` (offline_cache.drainer.open_outbox, handed in by the CLI) lets the
    health report show the outbox's depth; without it the queue reads "not available".
    """
    try:
        agent = KioskAgent(site_file, open_outbox=open_outbox)
    except (ConfigError, ValueError, OSError) as e:
        print(f"fleet agent cannot start: {e}", flush=True)
        return 3
    try:  # redacting JSON logs in the kiosk's log directory, own file (the app rotates its own)
        lc = agent.config.logging
        setup_logging(agent.config.resolve_path(lc.dir), lc.level, lc.max_bytes, lc.backups,
                      filename="fleet-agent.jsonl", console=True)
    except (ImportError, OSError):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not agent.config.fleet.enabled:
        print("fleet is disabled in configuration ([fleet] enabled = false); nothing to do", flush=True)
        return 0  # not a failure: systemd must not restart it in a loop
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.start()
    systemd.notify(f"READY=1\nSTATUS=fleet agent for {agent.kiosk_id}, "
                   f"trusted config v{agent.applier.trust.current_version()}")
    if once:
        reached = agent.connected.wait(30)
        if reached:
            time.sleep(1.0)  # retained bundles arrive right after subscribing
            while not agent._work.empty():
                time.sleep(0.2)
            time.sleep(0.5)
        agent.stop()
        return 0 if reached else 1
    wd = systemd.watchdog_interval_s()
    while not stop.wait(wd or 1.0):
        if wd and agent.alive():
            systemd.notify("WATCHDOG=1")
    systemd.notify("STOPPING=1")
    agent.stop()
    return 0
