"""The adapter contract: status, events, statistics, health, reconnection, registry."""
from __future__ import annotations

import os
import shutil
import threading

import pytest

from devices.base import DeviceAdapter, DeviceError, DeviceLost, DeviceState, EventKind, HealthLevel
from devices.diagnostics import diagnostics
from kiosk.bootstrap import drivers
from kiosk.config import DeviceSettings
from kiosk.infra.backoff import Backoff


class FileDevice(DeviceAdapter):
    """A toy driver whose 'hardware' is a directory (present = plugged in); each file is a scan."""

    kind = "toy"
    driver = "dir"

    def _open_transport(self) -> None:
        if not os.path.isdir(self.param("path")):
            raise DeviceLost(detail="path missing")

    def _poll_once(self) -> None:
        path = self.param("path")
        if not os.path.isdir(path):
            raise DeviceLost(detail="path missing")
        for name in sorted(os.listdir(path)):
            with open(os.path.join(path, name)) as fh:
                text = fh.read()
            os.unlink(os.path.join(path, name))
            self._stats.success(read_ms=1.0)
            self._emit(EventKind.CODE_SCANNED, text=text)


def collect(adapter):
    got: list = []
    cond = threading.Condition()

    def cb(ev):
        with cond:
            got.append(ev)
            cond.notify_all()

    adapter.add_listener(cb)

    def wait_for(kind, n=1, timeout=10):
        with cond:
            return cond.wait_for(lambda: sum(e.kind == kind for e in got) >= n, timeout)

    return got, wait_for, cb


def test_backoff_grows_and_caps():
    b = Backoff(0.1, 0.5)
    assert [b.next_delay() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    b.reset()
    assert b.next_delay() == 0.1
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_missing_device_goes_offline_then_recovers(tmp_path):
    path = tmp_path / "dev"
    dev = FileDevice({"path": str(path), "reconnect_initial_s": 0.02, "reconnect_max_s": 0.05})
    got, wait_for, _ = collect(dev)
    dev.open()
    try:
        assert dev.status.state == DeviceState.OFFLINE
        assert dev.status.code == "device_lost"
        assert wait_for(EventKind.DEVICE_LOST)
        path.mkdir()
        assert wait_for(EventKind.DEVICE_BACK)
        assert dev.status.state == DeviceState.READY
    finally:
        dev.close()
    assert dev.status.state == DeviceState.OFFLINE and dev.status.code == "closed"


def test_poll_loop_unplug_replug_without_restart(tmp_path):
    path = tmp_path / "dev"
    path.mkdir()
    dev = FileDevice({"path": str(path), "reconnect_initial_s": 0.02, "reconnect_max_s": 0.05,
                      "poll_interval_s": 0.01})
    got, wait_for, _ = collect(dev)
    with dev:
        dev.start_polling()
        (path / "1").write_text("ABC")
        assert wait_for(EventKind.CODE_SCANNED)
        shutil.rmtree(path)
        assert wait_for(EventKind.DEVICE_LOST)
        assert dev.wait_for_state(DeviceState.OFFLINE)
        path.mkdir()
        assert wait_for(EventKind.DEVICE_BACK)
        (path / "2").write_text("DEF")
        assert wait_for(EventKind.CODE_SCANNED, 2)
    texts = [e.payload["text"] for e in got if e.kind == EventKind.CODE_SCANNED]
    assert texts[:2] == ["ABC", "DEF"]
    stats = dev.statistics
    assert stats["operations"] >= 3 and stats["failures"] >= 1 and stats["last_error"] == "device_lost"
    assert "read_ms" in stats and stats["uptime_s"] >= 0


def test_broken_listener_does_not_stop_delivery(tmp_path):
    path = tmp_path / "dev"
    path.mkdir()
    dev = FileDevice({"path": str(path)})

    def bad(ev):
        raise RuntimeError("listener bug")

    dev.add_listener(bad)
    got, wait_for, cb = collect(dev)
    dev.open()
    assert wait_for(EventKind.STATUS_CHANGED)
    dev.remove_listener(cb)
    dev.close()
    assert dev.flush_events()
    # after removal the listener sees nothing more
    assert all(e.payload.get("new", {}).get("code") != "closed" for e in got)


def test_health_levels_and_diagnostics(tmp_path):
    path = tmp_path / "dev"
    path.mkdir()
    dev = FileDevice({"path": str(path), "password": "s3cret"})
    with dev:
        h = dev.health("internal")
        assert h.ok and h.level == HealthLevel.INTERNAL
        assert dev.health(HealthLevel.EXTERNAL).ok
        inter = dev.health("interactive", timeout=0.1, prompt=lambda m: None)
        assert not inter.ok and "不支持" in inter.message
        d = diagnostics(dev, run_health="external")
    assert d["status"]["state"] == "ready"
    assert d["last_health"]["level"] == "external"
    assert d["settings"]["password"] == "**REDACTED**"
    with pytest.raises(ValueError):
        diagnostics(dev, run_health="interactive")
    with pytest.raises(ValueError):
        dev.health("bogus")


def test_device_error_carries_code_and_chinese_message():
    e = DeviceError("no_card", "请放入身份证", detail="sw=80")
    assert e.code == "no_card" and "身份证" in e.message and "sw=80" in str(e)
    assert DeviceLost().code == "device_lost"


def test_create_from_settings_and_unknown_driver():
    with pytest.raises(drivers.UnknownDriver):
        drivers.create("idcard", DeviceSettings(driver="nope"))
    with pytest.raises(drivers.UnknownDriver):
        drivers.create("idcard", {})
    for (_kind, drv), target in drivers.DRIVERS.items():
        assert ":" in target and target.startswith(("devices.", "standins.")), target
        # real drivers live in devices/, stand-ins apart
        assert target.startswith("standins.") == (drv == "simulated"), target


def test_every_registered_driver_imports_and_follows_the_contract():
    for (kind, drv) in drivers.available_drivers():
        cls = drivers.driver_class(kind, drv)
        assert issubclass(cls, DeviceAdapter), (kind, drv)
        assert cls.kind == kind, (kind, drv, cls.kind)


class Misconfigured(DeviceAdapter):
    kind = "toy"
    driver = "misconfigured"

    def _open_transport(self) -> None:
        raise DeviceError("no_port", "未配置串口")


def test_configuration_error_on_open_is_error_state_and_raises():
    dev = Misconfigured({})
    with pytest.raises(DeviceError):
        dev.open()
    assert dev.status.state == DeviceState.ERROR and dev.status.code == "no_port" and not dev.is_open
    assert not dev.health("internal").ok


class Exploding(FileDevice):
    driver = "exploding"

    def _health_external(self):
        raise RuntimeError("bug")


def test_health_never_raises(tmp_path):
    (tmp_path / "d").mkdir()
    with Exploding({"path": str(tmp_path / "d")}) as dev:
        h = dev.health("external")
    assert not h.ok and h.details["code"] == "internal"
