"""Simulated fleets: N kiosks in one process running the real fleet agent code against a real broker.

Each simulated kiosk is a real ``kiosk.fleet.agent.KioskAgent`` (its own site file, fleet state
directory, trust store, ConfigApplier, command channel and paho client): bundles are verified,
applied and acknowledged, health is reported and signed commands are verified and answered by
that code. Only the devices, the queue and the command executor are simulated, with faults
chosen per kiosk by the seed: paper out or running low, the ID reader unplugged, a queue
backlog, and offline periods (the connection is cut, so the broker publishes the kiosk's last
will, and it comes back later).

So that 10,000 kiosks fit in one process, the agents' own threads are not started: one
network thread drives every paho client from a selector (paho's external-loop API), a few
worker threads run each kiosk's bundles, commands and health reports (one kiosk always on
the same worker, so its messages stay in order) and one scheduler spreads the health reports.
"""
from __future__ import annotations

import base64
import heapq
import io
import json
import logging
import random
import resource
import selectors
import signal
import socket
import tarfile
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.fleet.agent import KioskAgent
from kiosk.fleet.apply import HealthResult
from kiosk.fleet.bundle import BundleError, parse_bundle
from kiosk.fleet.commands import Command, CommandResult, is_command_topic
from kiosk.fleet.health import HealthProviders

log = logging.getLogger(__name__)

STATION_PLACES = {"zhoucun": "周村区", "boshan": "博山区", "zhangdian": "张店区", "linzi": "临淄区"}


@dataclass
class Faults:
    """What is wrong with one simulated kiosk; drawn from the seed, so a run is repeatable."""

    paper: str = "ok"  # ok | low | out
    reader_unplugged: bool = False
    backlog: int = 0
    backlog_age_s: float | None = None
    offline_chance: float = 0.0  # per health tick: the chance of an offline period starting
    visit_chance: float = 0.0  # a citizen is at the kiosk when a command arrives

    @classmethod
    def draw(cls, rng: random.Random) -> Faults:
        f = cls()
        r = rng.random()
        f.paper = "out" if r < 0.05 else "low" if r < 0.15 else "ok"
        f.reader_unplugged = rng.random() < 0.05
        if rng.random() < 0.08:
            f.backlog = rng.randint(5, 300)
            f.backlog_age_s = rng.uniform(600, 3 * 86400)
        f.offline_chance = 0.02 if rng.random() < 0.1 else 0.0
        f.visit_chance = 0.2 if rng.random() < 0.3 else 0.0
        return f


def _site(dirpath: Path, kiosk_id: str, group: str, station: str, broker_url: str, admin_keys: list[str],
          threshold: int, health_interval_s: float) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    site = dirpath / "site.toml"
    keys = ", ".join(json.dumps(k) for k in admin_keys)
    site.write_text(textwrap.dedent(f"""\
        [kiosk]
        id = "{kiosk_id}"
        group = "{group}"
        station_name = "{station}"
        [storage]
        data_dir = "{dirpath / 'var'}"
        key_file = "{dirpath / 'var' / 'kiosk.key'}"
        [logging]
        dir = "{dirpath / 'var' / 'log'}"
        [fleet]
        enabled = true
        broker_url = "{broker_url}"
        admin_keys = [{keys}]
        threshold = {threshold}
        state_dir = "{dirpath / 'fleet'}"
        health_interval_s = {health_interval_s}
        """), encoding="utf-8")
    return site


class SimKiosk:
    """One kiosk: the real agent over simulated devices, queue and command executor."""

    def __init__(self, index: int, kiosk_id: str, group: str, site: Path, faults: Faults, rng: random.Random,
                 env: dict[str, str]):
        self.index, self.kiosk_id, self.group = index, kiosk_id, group
        self.faults = faults
        self.rng = rng
        self.offline_until = 0.0
        self.pending_bundles: list[bytes] = []
        self.lock = threading.Lock()
        self.last_visit = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        providers = HealthProviders(devices=self.devices, queue=self.queue,
                                    extra=lambda: {"last_visit": self.last_visit})
        self.agent = KioskAgent(str(site), env=env, providers=providers,
                                health_check=lambda before, after: HealthResult(True),
                                command_executor=SimExecutor(self))

    @property
    def client(self) -> Any:
        return self.agent.client

    def devices(self) -> dict[str, dict[str, Any]]:
        f = self.faults
        printer = {"state": "error", "code": "paper_out"} if f.paper == "out" else (
            {"state": "ready", "code": "paper_near_end"} if f.paper == "low" else {"state": "ready", "code": "ok"})
        idcard = {"state": "offline", "code": "unplugged"} if f.reader_unplugged else {"state": "ready", "code": "ok"}
        return {"printer": {**printer, "driver": "simulated"}, "idcard": {**idcard, "driver": "simulated"},
                "qr": {"state": "ready", "code": "ok", "driver": "simulated"},
                "camera": {"state": "ready", "code": "ok", "driver": "simulated"}}

    def queue(self) -> dict[str, Any]:
        return {"available": True, "depth": self.faults.backlog, "oldest_age_s": self.faults.backlog_age_s,
                "failed": 0}


class SimExecutor:
    """Commands on a simulated kiosk: the same results a real one gives, from its simulated state."""

    def __init__(self, kiosk: SimKiosk):
        self.kiosk = kiosk

    def _visit(self) -> bool:
        return self.kiosk.rng.random() < self.kiosk.faults.visit_chance

    def execute(self, cmd: Command) -> CommandResult:
        k, f = self.kiosk, self.kiosk.faults
        if cmd.action == "screenshot":
            if self._visit():
                return CommandResult("refused", "visit_in_progress")
            png = _screen_png(k.kiosk_id)
            return CommandResult("done", data={"png_b64": base64.b64encode(png).decode("ascii"), "bytes": len(png)})
        if cmd.action == "diagnostics":
            raw = _diagnostics_tar(k)
            return CommandResult("done", data={"bundle_b64": base64.b64encode(raw).decode("ascii"),
                                               "name": "qhb-diagnose.tar.gz", "bytes": len(raw)})
        if cmd.action == "test-page":
            if self._visit():
                return CommandResult("refused", "visit_in_progress")
            if f.paper == "out":
                return CommandResult("failed", error="printer: paper_out")
            return CommandResult("done", data={"printed": True})
        if cmd.action == "drain":
            delivered, f.backlog, f.backlog_age_s = f.backlog, 0, None
            return CommandResult("done", data={"delivered": delivered, "failed": 0, "retried": 0, "remaining": 0})
        if cmd.action in ("restart", "reboot"):
            return CommandResult("done", data={"restart": "at_idle"} if cmd.action == "restart" else {"reboot": "now"})
        return CommandResult("refused", "not_supported")


def _screen_png(kiosk_id: str) -> bytes:
    from PIL import Image, ImageDraw  # noqa: PLC0415 - Pillow only when a simulated screenshot is asked for

    img = Image.new("RGB", (320, 200), (0, 94, 184))
    ImageDraw.Draw(img).text((10, 90), f"qhb home {kiosk_id}", fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _diagnostics_tar(k: SimKiosk) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        doc = json.dumps({"checks": [{"name": "simulated", "status": "ok"}], "devices": k.devices(),
                          "queue": k.queue()}, ensure_ascii=False).encode()
        info = tarfile.TarInfo("qhb-diagnose/diagnose.json")
        info.size = len(doc)
        tar.addfile(info, io.BytesIO(doc))
    return buf.getvalue()


@dataclass
class SimStats:
    connected: int = 0
    bundles: int = 0
    commands: int = 0
    health_reports: int = 0
    offline_periods: int = 0
    started: float = field(default_factory=time.monotonic)


class SimulatedFleet:
    """N SimKiosks, one network thread, a few workers, one health scheduler."""

    def __init__(self, count: int, broker_url: str, *, seed: int = 0, state_dir: str | Path | None = None,
                 admin_keys: list[str], threshold: int = 1, groups: list[str] | None = None,
                 health_interval_s: float = 30.0, workers: int = 4, offline_s: tuple[float, float] = (20.0, 120.0),
                 offline_periods: bool = True):
        self.count, self.seed = count, seed
        self.health_interval_s = health_interval_s
        self.offline_s = offline_s
        self.stats = SimStats()
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="qhb-fleet-sim-")
        self.state_dir = Path(state_dir or self._tmp.name)  # type: ignore[union-attr]
        groups = groups or ["zhoucun", "boshan", "zhangdian"]
        _raise_fd_limit(count + 256)
        env = {"KIOSK_PROFILE": "development"}
        self.kiosks: list[SimKiosk] = []
        for i in range(count):
            rng = random.Random(seed * 1_000_003 + i)
            group = groups[i % len(groups)]
            kid = f"sim-{group}-{i:05d}"
            station = f"{STATION_PLACES.get(group, group)}第{i + 1}便民服务站"
            site = _site(self.state_dir / kid, kid, group, station, broker_url, admin_keys, threshold,
                         health_interval_s)
            faults = Faults.draw(rng)
            if not offline_periods:
                faults.offline_chance = 0.0
            self.kiosks.append(SimKiosk(i, kid, group, site, faults, rng, env))
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)  # a full wake pipe means a wake-up is already pending
        self._network_thread: threading.Thread | None = None
        self._wake_w.setblocking(False)  # a full wake pipe must never block a writer (the network thread wakes anyway)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._want_write: set[int] = set()
        self._ww_lock = threading.Lock()
        self._stop = threading.Event()
        self._queues: list[list[tuple[SimKiosk, str, Any]]] = [[] for _ in range(max(1, workers))]
        self._conds = [threading.Condition() for _ in self._queues]
        self._threads: list[threading.Thread] = []
        self._by_sock: dict[int, SimKiosk] = {}
        for k in self.kiosks:
            self._wire(k)

    # ------------------------------------------------------------------ wiring the real agent to our loop
    def _wire(self, k: SimKiosk) -> None:
        c = k.client
        c.on_socket_open = lambda client, userdata, sock, k=k: self._sock_open(k, sock)
        c.on_socket_close = lambda client, userdata, sock: self._sock_close(sock)
        c.on_socket_register_write = lambda client, userdata, sock, k=k: self._register_write(k)
        c.on_socket_unregister_write = lambda client, userdata, sock, k=k: self._unregister_write(k)
        c.on_message = lambda client, userdata, msg, k=k: self._route(k, msg)

    def _sock_open(self, k: SimKiosk, sock: Any) -> None:
        self._sel.register(sock, selectors.EVENT_READ, k)
        self._by_sock[sock.fileno()] = k

    def _sock_close(self, sock: Any) -> None:
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _register_write(self, k: SimKiosk) -> None:
        with self._ww_lock:
            self._want_write.add(k.index)
        if threading.current_thread() is self._network_thread:
            return  # the network loop writes before it selects again
        try:
            self._wake_w.send(b"w")
        except (BlockingIOError, OSError):
            pass

    def _unregister_write(self, k: SimKiosk) -> None:
        with self._ww_lock:
            self._want_write.discard(k.index)

    def _route(self, k: SimKiosk, msg: Any) -> None:
        """The network thread only queues; the kiosk's worker runs the agent's code."""
        if not msg.payload:
            return
        if is_command_topic(msg.topic):
            self._submit(k, "command", (bytes(msg.payload), bool(msg.retain)))
        else:
            with k.lock:
                k.pending_bundles.append(bytes(msg.payload))
            self._submit(k, "bundles", None)

    def _submit(self, k: SimKiosk, what: str, arg: Any) -> None:
        i = k.index % len(self._queues)
        with self._conds[i]:
            self._queues[i].append((k, what, arg))
            self._conds[i].notify()

    # ------------------------------------------------------------------ threads
    def start(self) -> SimulatedFleet:
        self._network_thread = threading.Thread(target=self._network, name="sim-network", daemon=True)
        self._threads.append(self._network_thread)
        self._threads += [threading.Thread(target=self._worker, args=(i,), name=f"sim-worker-{i}", daemon=True)
                          for i in range(len(self._queues))]
        self._threads.append(threading.Thread(target=self._scheduler, name="sim-health", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Each kiosk says goodbye (status offline, as a stopping agent does), then everything stops."""
        if self._stop.is_set():
            return
        for k in self.kiosks:
            if k.agent.connected.is_set():
                k.client.publish(f"qhb/kiosk/{k.kiosk_id}/status", k.agent._status_doc(False), qos=1, retain=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._ww_lock:
                if not self._want_write:
                    break
            time.sleep(0.05)
        self._stop.set()
        for c in self._conds:
            with c:
                c.notify_all()
        for t in self._threads:
            t.join(timeout=10)
        for k in self.kiosks:
            try:
                k.client.disconnect()
                k.client.loop_write()
            except (OSError, ValueError):
                pass
        if self._tmp is not None:
            self._tmp.cleanup()

    def _network(self) -> None:
        try:
            self._network_loop()
        except Exception:  # noqa: BLE001 - logged: without this thread no simulated kiosk talks
            log.exception("the simulated fleet's network loop failed")
            raise

    def _network_loop(self) -> None:
        to_connect = list(self.kiosks)
        last_misc = 0.0
        while not self._stop.is_set():
            for _ in range(min(len(to_connect), 200)):  # connect in slices, reading answers in between
                k = to_connect.pop(0)
                self._connect(k)
            for key, _mask in self._sel.select(timeout=0.05):
                k = key.data
                if k is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                k.client.loop_read()
            with self._ww_lock:
                writers = list(self._want_write)
            for i in writers:
                self.kiosks[i].client.loop_write()
            now = time.monotonic()
            if now - last_misc >= 1.0:
                last_misc = now
                connected = 0
                for k in self.kiosks:
                    if k.client.socket() is not None:
                        k.client.loop_misc()
                    if k.agent.connected.is_set():
                        connected += 1
                    elif k.client.socket() is None and k not in to_connect and now >= k.offline_until:
                        to_connect.append(k)  # back from an offline period, or the broker went away
                self.stats.connected = connected

    def _connect(self, k: SimKiosk) -> None:
        try:
            if k.client.socket() is None:
                k.client.reconnect() if getattr(k, "_ever", False) else k.client.connect(
                    k.agent.addr.host, k.agent.addr.port, keepalive=60)
                k._ever = True  # type: ignore[attr-defined]
        except OSError as e:
            log.debug("simulated kiosk cannot connect: %s", e)
            k.offline_until = time.monotonic() + 2.0

    def _worker(self, i: int) -> None:
        q, cond = self._queues[i], self._conds[i]
        while not self._stop.is_set():
            with cond:
                while not q and not self._stop.is_set():
                    cond.wait(0.5)
                items, q[:] = list(q), []
            for k, what, arg in items:
                try:
                    self._run(k, what, arg)
                except Exception:  # noqa: BLE001 - logged; one simulated kiosk must not stop the others
                    log.exception("simulated kiosk task failed")

    def _run(self, k: SimKiosk, what: str, arg: Any) -> None:
        if what == "bundles":
            with k.lock:
                batch, k.pending_bundles = k.pending_bundles, []
            for raw in sorted(batch, key=_version_or_zero):  # oldest first, as the agent's worker does
                k.agent.handle(raw)
                self.stats.bundles += 1
        elif what == "command":
            raw, retained = arg
            k.agent.commands.handle(raw, retained)
            self.stats.commands += 1
        elif what == "health":
            k.agent._publish_health()
            self.stats.health_reports += 1
        elif what == "offline":
            sock = k.client.socket()
            if sock is not None:  # cut the line: no DISCONNECT, so the broker sends the last will
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.stats.offline_periods += 1

    def _scheduler(self) -> None:
        heap = [(time.monotonic() + random.Random(self.seed + k.index).uniform(0, self.health_interval_s), k.index)
                for k in self.kiosks]
        heapq.heapify(heap)
        while not self._stop.is_set():
            when, i = heap[0]
            delay = when - time.monotonic()
            if delay > 0:
                self._stop.wait(min(delay, 0.5))
                continue
            heapq.heapreplace(heap, (when + self.health_interval_s, i))
            k = self.kiosks[i]
            if not k.agent.connected.is_set():
                continue
            if k.faults.offline_chance and k.rng.random() < k.faults.offline_chance:
                k.offline_until = time.monotonic() + k.rng.uniform(*self.offline_s)
                self._submit(k, "offline", None)
            else:
                self._submit(k, "health", None)

    def wait_connected(self, n: int | None = None, timeout: float = 60.0) -> bool:
        need = self.count if n is None else n
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for k in self.kiosks if k.agent.connected.is_set()) >= need:
                return True
            time.sleep(0.1)
        return False


def _version_or_zero(raw: bytes) -> int:
    try:
        return parse_bundle(raw, max_bytes=1 << 30).version
    except BundleError:
        return 0


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))


def run_simulation(*, count: int, broker_url: str, seed: int, state_dir: str | None, admin_keys: list[str],
                   threshold: int, groups: list[str], health_interval_s: float, duration_s: float | None,
                   echo: Callable[[str], None] = print) -> int:
    """`kiosk-admin fleet simulate`: run until the duration ends or SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    t0 = time.monotonic()
    fleet = SimulatedFleet(count, broker_url, seed=seed, state_dir=state_dir, admin_keys=admin_keys,
                           threshold=threshold, groups=groups, health_interval_s=health_interval_s)
    echo(f"fleet simulate: {count} kiosks built in {time.monotonic() - t0:.1f} s (seed {seed}); connecting")
    faults = [k.faults for k in fleet.kiosks]
    echo(f"fleet simulate: faults: paper out {sum(f.paper == 'out' for f in faults)}, "
         f"paper low {sum(f.paper == 'low' for f in faults)}, reader unplugged "
         f"{sum(f.reader_unplugged for f in faults)}, queue backlog {sum(bool(f.backlog) for f in faults)}, "
         f"offline periods possible {sum(bool(f.offline_chance) for f in faults)}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fleet.start()
    ok = fleet.wait_connected(timeout=max(60.0, count / 50))
    echo(f"fleet simulate: {fleet.stats.connected if not ok else count} connected"
         f"{'' if ok else ' (not all: see the broker)'} after {time.monotonic() - t0:.1f} s")
    end = None if duration_s is None else time.monotonic() + duration_s
    while not stop.wait(5.0 if end is None else max(0.0, min(5.0, end - time.monotonic()))):
        s = fleet.stats
        echo(f"fleet simulate: connected {s.connected}, bundles {s.bundles}, commands {s.commands}, "
             f"health reports {s.health_reports}, offline periods {s.offline_periods}")
        if end is not None and time.monotonic() >= end:
            break
    fleet.stop()
    return 0 if ok else 1
