"""The soak: N complete visits through the real UI, with faults, then the kiosk's books are reconciled.

Drives the real KioskApp (Kivy, in an Xvfb of its own when there is no display) with the
simulated devices, against the platform simulator running in a process of its own (so its
memory and threads are not the kiosk's). Every visit is a citizen of their own (name, ID
number and phone differ from the last one) and goes through one flow kind:

- ``apply`` (form, no paper), ``apply_materials`` (a captured page; sometimes a camera error or a
  dark shot first), ``pay`` (the payment QR, paid through ``/__sim/payments``), ``certificate``
  (face check, fetch, print), ``certify`` (face check, submit), ``progress`` (by the receipt QR or
  by the card), ``help`` (call a helper, or book a home visit), ``walk_away`` (the citizen leaves
  mid-form and the idle timeout wipes the visit) and ``abandon`` (back to home while a card read
  or a capture is in flight).

Some visits run in elderly mode; faults come in stretches and one-offs: the platform in
``outage`` and ``flaky`` (``/__sim/mode``), the printer out of paper or with its cover open
(the printer emulator's status), the card reader unplugged and plugged back, the camera
unplugged or a dark frame.

After each visit the next citizen must find nothing of the previous one: the session, the
per-visit scratch and the text of every screen are searched for the previous citizen's name,
ID number and phone (``cross_visit_leaks`` counts the visits where anything was found). At the
end the platform goes back to normal, the outbox is drained, and every application the kiosk
gave a citizen a number for is looked up on the platform: ``lost`` (not there), ``duplicated``
(there more than once).

    .venv/bin/python -m bench.soak --visits 200 --json
    make soak                      # 10,000 visits, figures into bench/results/soak.json

Nothing here asserts a timing; tests/soak/ asserts the counts on a short run.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import gc
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench.binding_census import census, growth

log = logging.getLogger("bench.soak")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

APPLY_ITEM = "QHB-RS-018"  # 居民养老保险参保登记: phone + choice, no paper
MATERIALS_ITEM = "QHB-RS-027"  # 就业困难人员认定: phone + choice + one paper
PAY_ITEM = "QHB-RS-005"  # 居民养老保险保险费的缴纳
CERT_ITEM = "QHB-RS-008"  # 个人参保缴费证明查询打印 (query_print)
CERTIFY_ITEM = "QHB-RS-022"  # 居民养老保险待遇领取资格认证 (certify)

#: flow kinds and how often each comes (the common visits most)
KINDS: dict[str, int] = {"apply": 28, "apply_materials": 12, "pay": 10, "certificate": 8, "certify": 6,
                         "progress": 12, "help": 8, "walk_away": 8, "abandon": 8}
#: flows that need an answer from the platform during the visit, per platform fault (the rest queue)
ONLINE_ONLY = {"outage": ("pay", "certificate", "certify", "progress"), "flaky": ("certificate",)}
#: how often a citizen tries a step again that failed on a flaky line
TRIES = 4
#: the simulated card reader's poll in the soak (a kiosk: 0.2-0.3 s)
READER_POLL_S = 0.05
#: the first visits: every kind and every fault once, before the start figures are taken
WARM_UP: list[tuple[str, str]] = [
    ("apply", ""), ("apply_materials", ""), ("pay", ""), ("certificate", ""), ("certify", ""),
    ("progress", ""), ("help", ""), ("walk_away", ""), ("abandon", ""), ("apply", "outage"),
    ("apply_materials", "camera_dark"), ("apply", "paper_out"), ("certificate", "cover_open"),
    ("apply", "reader_unplug"), ("apply_materials", "camera_unplug"), ("apply", "flaky"),
    ("help", "elderly"), ("apply", "elderly"), ("pay", "elderly"), ("progress", "elderly"),
]

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰凤梅琳建国志红"


# ----------------------------------------------------------------------------- measuring
def _status_field(name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def rss_mb() -> float:
    return round(_status_field("VmRSS") / 1024, 1)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _tcp_address(hex_addr: str) -> str:
    host, port = hex_addr.split(":")
    if len(host) == 8:  # IPv4, little-endian
        ip = ".".join(str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0))
    else:
        ip = "[ipv6]"
    return f"{ip}:{int(port, 16)}"


def socket_names() -> dict[str, str]:
    """socket inode → "tcp local -> remote" or "unix PATH": which peer a descriptor more at the end talks to."""
    out: dict[str, str] = {}
    for proto in ("tcp", "tcp6"):
        try:
            with open(f"/proc/self/net/{proto}", encoding="ascii") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            out[cols[9]] = f"{proto} {_tcp_address(cols[1])} -> {_tcp_address(cols[2])}"
    try:
        with open("/proc/self/net/unix", encoding="ascii", errors="replace") as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                out[cols[6]] = "unix " + (cols[7] if len(cols) > 7 else "(unnamed)")
    except OSError:
        pass
    return out


def fd_targets() -> dict[str, str]:
    """What each open descriptor is (a file, a pipe, a socket with its peer): one more at the end says which."""
    out: dict[str, str] = {}
    names = socket_names()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            target = f"{target} {names.get(target[8:-1], '')}".rstrip()
        out[fd] = target
    return out


def threads() -> int:
    return _status_field("Threads")


def cpu_by_thread() -> dict[str, float]:
    """CPU seconds (user + system) per thread name, summed: where the soak's time went."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii", errors="replace") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        name = name.rstrip("0123456789_-")
        out[name] = round(out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick, 1)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


class SoakClock:
    """Monotonic time the soak can fast-forward, so an idle timeout needs no real waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@dataclasses.dataclass
class Citizen:
    card: Any
    phone: str

    @property
    def needles(self) -> list[str]:
        """What of this citizen must never be found in the next visit (full and masked forms)."""
        from kiosk.domain.identity import mask_id_number, mask_phone  # noqa: PLC0415 - after configure_kivy

        c = self.card
        return [c.name, c.id_number, mask_id_number(c.id_number), self.phone, mask_phone(self.phone)]


def make_citizen(n: int, rng: random.Random) -> Citizen:
    """Visit n's citizen: the name, the ID number's last four digits and the phone's differ from visit n-1's."""
    from devices.idcard.known_answer import sample_card, sample_id_number  # noqa: PLC0415 - after configure_kivy

    birth = _dt.date(1940, 1, 1) + _dt.timedelta(days=rng.randrange(0, 60 * 365))
    name = SURNAMES[n % len(SURNAMES)] + GIVEN[(n * 7) % len(GIVEN)] + GIVEN[(n * 13 + 5) % len(GIVEN)]
    idn = sample_id_number(birth=birth.strftime("%Y%m%d"), seq=f"{n % 1000:03d}")
    card = sample_card(name=name, id_number=idn, birth_date=birth, sex="男" if int(idn[16]) % 2 else "女")
    phone = f"139{rng.randrange(0, 10_000):04d}{n % 10_000:04d}"
    return Citizen(card, phone)


# ----------------------------------------------------------------------------- the platform
class PlatformProcess:
    """`kiosk platform-sim` in a process of its own on a free port."""

    def __init__(self, state_dir: Path, seed: int) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = state_dir / "platform-sim.log"  # why it stopped, if it does
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kiosk.cli.main", "platform-sim", "--port", "0", "--state", str(state_dir),
                 "--seed", str(seed)],
                stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"platform-sim did not start: {line!r}")
        self.url = line.split("listening on ", 1)[1].split()[0]
        self.http = requests.Session()

    def mode(self, mode: str, **kw: Any) -> None:
        self.http.post(self.url + "/__sim/mode", json={"mode": mode, **kw}, timeout=10).raise_for_status()

    def pay(self, payment_id: str) -> None:
        self.http.post(f"{self.url}/__sim/payments/{payment_id}/pay", timeout=10).raise_for_status()

    def applications(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.http.get(self.url + "/__sim/applications", timeout=60).json()["applications"]
        return rows

    def stop(self) -> None:
        if getattr(self, "http", None) is not None:
            self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class VisitFailed(RuntimeError):
    pass


# ----------------------------------------------------------------------------- the soak
class Soak:
    def __init__(self, app: Any, drv: Any, svc: Any, sim: PlatformProcess, clock: SoakClock, seed: int) -> None:
        self.app, self.drv, self.svc, self.sim, self.clock = app, drv, svc, sim, clock
        self.rng = random.Random(seed)
        self.dev = svc.ctx.devices
        self.emu = self.dev["printer"].emulator
        self.numbers: list[tuple[str, str]] = []  # (number shown to the citizen, local number)
        self.leaks: list[str] = []
        self.failures: list[str] = []
        self.kinds: dict[str, int] = {}
        self.faults: dict[str, int] = {}
        self.prev: Citizen | None = None
        self.mode = "normal"
        self.seconds: dict[str, float] = {}
        self.last_scan = 0.0  # monotonic time of the last receipt scan
        self.doing = ""  # the visit under way, for the frame probe's longest gaps

    # ---------------------------------------------------------------- driving helpers
    def wait(self, pred: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
        from standins.ui_driver import DriverError  # noqa: PLC0415 - Kivy: after configure_kivy

        try:
            self.drv.wait_until(pred, timeout=timeout, what=what)
        except DriverError as e:
            raise VisitFailed(str(e)) from None

    def screen_is(self, name: str, timeout: float = 90.0) -> None:
        self.wait(lambda: self.app.current == name, f"screen {name}", timeout)

    def press(self, key: str) -> None:
        from standins.ui_driver import DriverError  # noqa: PLC0415 - Kivy: after configure_kivy

        try:
            self.drv.press(key)
        except DriverError as e:
            raise VisitFailed(str(e)) from None

    def fill_form(self, c: Citizen) -> None:
        form = self.app.screen("form")
        self.screen_is("form")
        for _ in range(len(form.fields)):
            f = form.field
            if f["type"] == "choice":
                self.press("choice-0")
            elif f["type"] in ("phone", "number"):
                for k in (c.phone if f["type"] == "phone" else "1"):
                    form.press(k)  # the keypad's own handler: eleven taps would only cost frames
            self.press("form-next")

    def identify(self, c: Citizen, then: str = "identify-next") -> None:
        self.screen_is("identify")
        self.dev["idcard"].insert_card(c.card)
        ids = self.app.screen("identify")
        self.wait(lambda: self.drv.has(then) or ids.error, "identified")
        if ids.error:
            raise VisitFailed(f"identify: {ids.message}")
        if ids.person.get("name") and ids.person["name"][0] != c.card.name[0]:
            self.leaks.append("identify shows another citizen")

    def take_face(self) -> None:
        """The face check goes to the platform: on a flaky line the citizen simply tries again."""
        ids = self.app.screen("identify")
        for _ in range(TRIES):
            ids.error = False  # the last attempt's message stays up until the next answer
            self.press("identify-face")
            self.wait(lambda: ids.face_done or ids.error, "face check")
            if ids.face_done:
                break
        if not ids.face_done:
            raise VisitFailed(f"face check: {ids.message}")
        self.press("identify-next")

    def submit_and_receipt(self) -> None:
        self.screen_is("review")
        self.press("review-submit")
        self.screen_is("receipt")
        rc = self.app.screen("receipt")
        local = str(self.svc.ctx.scratch.get("local_no") or "")
        self.numbers.append((rc.tracking_no, local))
        self.wait(lambda: rc.print_message and "正在" not in rc.print_message, "receipt printed")
        self.press("receipt-done")
        self.rate()

    def rate(self) -> None:
        self.screen_is("rating")
        r = self.rng.random()
        if r < 0.2:
            self.press("rating-skip")
        elif r < 0.3:
            self.press("rate-4")
            self.press("reason-1")
            self.press("rating-send")  # reasons are a multi-select (with an optional note): sent by the button
        else:
            self.press(f"rate-{self.rng.randrange(3)}")
        self.screen_is("home")

    # ---------------------------------------------------------------- flow kinds
    def v_apply(self, c: Citizen) -> None:
        self.press("home-search")
        self.screen_is("search")
        for k in "jmyl":  # the on-screen keyboard's keys, tapped frame by frame as the other buttons
            self.press(f"key-{k}")
        self.press(f"item-{APPLY_ITEM}") if self.drv.has(f"item-{APPLY_ITEM}") else \
            self.app.go("guide", code=APPLY_ITEM)
        self.screen_is("guide")
        self.press("guide-start")
        self.identify(c)
        self.press("identify-next")
        self.fill_form(c)
        self.submit_and_receipt()

    def v_apply_materials(self, c: Citizen, fault: str = "") -> None:
        cam = self.dev["camera"]
        self.app.go("guide", code=MATERIALS_ITEM)
        self.press("guide-start")
        self.identify(c)
        self.press("identify-next")
        self.fill_form(c)
        self.screen_is("materials")
        ms = self.app.screen("materials")
        if fault == "camera_dark":
            cam.variant = "too_dark"
            self.press("materials-capture")
            self.wait(lambda: ms.error, "quality message")
            cam.variant = "good"
        elif fault == "camera_unplug":
            cam.present = False
            self.press("materials-capture")
            self.wait(lambda: ms.error or self.app.current != "materials", "camera error")
            cam.present = True
            self.wait(lambda: self.svc.station.refresh_status().devices.get("camera") == "ready",
                      "camera back", timeout=60)
            if self.app.current != "materials":
                raise VisitFailed(f"camera unplugged: screen {self.app.current}")
        self.press("materials-capture")
        self.wait(lambda: ms.reviewing or (ms.error and ms.message), "capture")
        if not ms.reviewing:
            raise VisitFailed(f"capture: {ms.message}")
        self.press("materials-next")
        self.submit_and_receipt()

    def v_pay(self, c: Citizen) -> None:
        self.app.go("guide", code=PAY_ITEM)
        self.press("guide-start")
        self.identify(c)
        self.press("identify-next")
        self.fill_form(c)
        self.screen_is("payment")
        pay = self.app.screen("payment")
        for _ in range(TRIES):
            self.wait(lambda: pay.waiting or pay.error, "payment QR")
            if pay.waiting:
                break
            self.press("payment-retry")  # 重新付款: the order could not be made on a flaky line
        if not pay.waiting:
            raise VisitFailed(f"payment: {pay.message}")
        self.sim.pay(self.svc.ctx.scratch["payment_id"])
        self.screen_is("receipt")
        rc = self.app.screen("receipt")
        self.wait(lambda: rc.print_message and "正在" not in rc.print_message, "receipt printed")
        self.press("receipt-done")
        self.rate()

    def v_certificate(self, c: Citizen) -> None:
        self.press("home-certificate")
        self.screen_is("certificate")
        self.press(f"item-{CERT_ITEM}")
        self.identify(c, then="identify-face")
        self.take_face()
        self.fill_form(c)
        self.screen_is("certificate")
        cs = self.app.screen("certificate")
        self.wait(lambda: cs.stage == "preview" or cs.error, "certificate")
        if cs.stage != "preview":
            raise VisitFailed(f"certificate: {cs.message}")
        self.press("certificate-print")
        self.wait(lambda: cs.stage == "printed", "certificate printed")
        self.press("certificate-done")
        self.rate()

    def v_certify(self, c: Citizen) -> None:
        self.app.go("guide", code=CERTIFY_ITEM)
        self.press("guide-start")
        self.identify(c, then="identify-face")
        self.take_face()
        self.fill_form(c)
        self.submit_and_receipt()

    def v_progress(self, c: Citizen) -> None:
        self.press("home-progress")
        self.screen_is("progress")
        pr = self.app.screen("progress")
        by_qr = bool(self.numbers) and self.rng.random() < 0.5
        for _ in range(TRIES):
            pr.error = False  # the last attempt's message stays up until the next answer
            if by_qr:
                # the scanner reports a code once while it is seen again within its window: a citizen who
                # scans the same receipt again has lowered it first
                since = time.monotonic() - self.last_scan
                if since < self.dev["qr"].deduper.window_s + 0.1:
                    self.drv.pump(self.dev["qr"].deduper.window_s + 0.1 - since)
                self.dev["qr"].scan(f"QHB1:{self.numbers[-1][0]}")
                self.last_scan = time.monotonic()
            else:
                self.dev["idcard"].remove_card()
                self.drv.pump(0.25)
                self.dev["idcard"].insert_card(c.card)
            try:
                self.wait(lambda: pr.has_results or pr.error or "没有查到" in pr.message, "progress", timeout=20)
            except VisitFailed:
                continue  # neither answer nor message: scan or insert again, as a citizen would
            if pr.has_results or "没有查到" in pr.message:  # a queued case is not on the platform yet
                break
        if not (pr.has_results or "没有查到" in pr.message):
            raise VisitFailed(f"progress: {pr.message}")
        self.press("progress-done")
        self.screen_is("home")

    def v_help(self, c: Citizen) -> None:
        self.press("home-help")
        self.screen_is("help")
        hs = self.app.screen("help")
        if self.rng.random() < 0.5:
            self.press("help-now")
            for k in c.phone:
                hs._key(k)
            self.press("help-call")
            if hs.stage != "helped":
                raise VisitFailed(f"help: {hs.message}")
        else:
            self.press("help-visit")
            self.identify(c)
            self.press("identify-next")
            self.screen_is("help")
            self.press("visit-item-0")
            self.press("time-1")
            for k in c.phone:
                hs._key(k)
            self.press("visit-book")
            if hs.stage != "booked":
                raise VisitFailed(f"home visit: {hs.message}")
        self.press("nav-home")
        self.screen_is("home")

    def v_walk_away(self, c: Citizen) -> None:
        """The citizen leaves in the middle of the form: the warning banner, then the wipe."""
        self.app.go("guide", code=APPLY_ITEM)
        self.press("guide-start")
        self.identify(c)
        self.press("identify-next")
        self.screen_is("form")
        form = self.app.screen("form")
        for k in c.phone[:6]:
            form.press(k)
        s = self.svc.ctx.session
        self.clock.offset += s.idle_timeout_s - s.idle_warning_s + 1
        self.wait(lambda: self.app.root.idle_banner.active, "idle warning")
        self.clock.offset += s.idle_warning_s + 1
        self.screen_is("home")

    def v_abandon(self, c: Citizen) -> None:
        """Back to home while work of the visit is still in flight (a card read, a capture, a face check)."""
        which = self.rng.randrange(3)
        if which == 0:
            self.app.go("guide", code=APPLY_ITEM)
            self.press("guide-start")
            self.screen_is("identify")
            self.dev["idcard"].insert_card(c.card)
            self.drv.pump(0.0)
        elif which == 1:
            self.app.go("guide", code=MATERIALS_ITEM)
            self.press("guide-start")
            self.identify(c)
            self.press("identify-next")
            self.fill_form(c)
            self.screen_is("materials")
            self.press("materials-capture")
        else:
            self.app.go("guide", code=CERTIFY_ITEM)
            self.press("guide-start")
            self.identify(c, then="identify-face")
            self.press("identify-face")
        self.press("nav-home")
        self.screen_is("home")

    # ---------------------------------------------------------------- one visit
    def visit(self, n: int, kind: str, fault: str, elderly: bool) -> None:
        c = make_citizen(n, self.rng)
        t0 = time.monotonic()
        self.doing = f"visit {n} {kind}" + (f"+{fault}" if fault else "") + (" elderly" if elderly else "")
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if fault:
            self.faults[fault] = self.faults.get(fault, 0) + 1
        if elderly != bool(self.svc.mode.elderly):
            self.press("nav-elderly")
        self.before_fault(fault)
        try:
            getattr(self, "v_" + kind)(c, fault) if kind == "apply_materials" else getattr(self, "v_" + kind)(c)
        except VisitFailed as e:
            self.failures.append(f"visit {n} {kind} {fault}: {e}")
            self.recover()
        finally:
            self.after_fault(fault)
            self.dev["idcard"].remove_card()
        reader = self.dev["idcard"]
        if reader.plugged_in:  # the citizen takes the card away before the next one comes: the reader sees it go
            self.wait(lambda: reader.current_card is None, "card taken away", 10)
        self.settle()
        self.check_clean(n, c)
        self.prev = c
        key = kind + (f"+{fault}" if fault else "")
        self.seconds[key] = round(self.seconds.get(key, 0.0) + time.monotonic() - t0, 2)

    def before_fault(self, fault: str) -> None:
        if fault in ("outage", "flaky"):
            self.sim.mode(fault)
            self.mode = fault
        elif fault == "paper_out":
            self.emu.set_status("paper-out")
        elif fault == "cover_open":
            self.emu.set_status("cover-open")
        elif fault == "reader_unplug":
            reader = self.dev["idcard"]
            reader.plugged_in = False
            self.wait(lambda: self.svc.station.refresh_status().devices.get("idcard") == "offline",
                      "reader offline", timeout=60)
            reader.plugged_in = True
            self.wait(lambda: self.svc.station.refresh_status().devices.get("idcard") == "ready",
                      "reader back", timeout=60)

    def after_fault(self, fault: str) -> None:
        if fault in ("outage", "flaky"):
            self.sim.mode("normal")
            self.mode = "normal"
        elif fault in ("paper_out", "cover_open"):
            self.emu.set_status("ok")
        if fault == "camera_unplug":
            self.dev["camera"].present = True
        self.dev["camera"].variant = "good"

    def recover(self) -> None:
        self.svc.visit.end_visit("soak-recover")
        try:
            self.screen_is("home", timeout=30)
        except VisitFailed:
            self.app.home()

    def settle(self) -> None:
        """The visit is over: the clear event handled, home shown; the harness's own peers trimmed."""
        self.wait(lambda: self.app.current == "home" and self.svc.ctx.events.pending() == 0, "visit cleared")
        self.drv.pump(0.0)
        self.app.screen_log.clear()
        self.app.history.clear()
        del self.emu.receipts[:]  # the printer emulator is the harness's, not the kiosk's memory
        speech = getattr(self.svc.ctx.speech, "spoken", None)
        if speech is not None:
            speech.clear()

    def rest(self) -> None:
        """A quiet minute (on the soak's clock): the last pool work done and the platform connections kept alive
        for the visits closed by the kiosk's idle rule, so descriptors are counted at rest, at the start as at the
        end (a kept-alive connection is reused, not leaked)."""
        for _ in range(20):
            self.drv.pump(0.1)
        self.clock.offset += self.svc.ctx.timings.platform_idle_close_s + 1
        for _ in range(30):  # a status refresh or two (every status_interval_s) applies the rule
            self.drv.pump(0.1)

    def check_clean(self, n: int, c: Citizen) -> None:
        """Nothing of this visit's citizen (nor of the previous one) anywhere the next citizen could reach."""
        from screens.widgets import walk  # noqa: PLC0415 - Kivy: after configure_kivy

        found: list[str] = []
        s = self.svc.ctx.session
        d = s.data
        if d.identity is not None or d.form or d.materials or d.face_photo is not None or d.tracking_no \
                or d.item_code:
            found.append(f"session holds data in {s.state.name}")
        if self.svc.ctx.scratch:
            found.append(f"scratch holds {sorted(self.svc.ctx.scratch)}")
        needles = [x for x in c.needles + (self.prev.needles if self.prev else []) if x]
        for scr in self.app.root.sm.screens:
            for w in walk(scr):
                t = str(getattr(w, "text", "") or "")
                if t and any(x in t for x in needles):
                    found.append(f"{scr.name}: {type(w).__name__} shows a citizen's data")
            for prop in ("person", "tracking_no", "phone", "values", "summary", "body", "bill", "results"):
                v = getattr(scr, prop, None)
                if v and any(x in str(v) for x in needles):
                    found.append(f"{scr.name}.{prop} holds a citizen's data")
        if found:
            self.leaks.append(f"visit {n}: " + "; ".join(sorted(set(found))))

    # ---------------------------------------------------------------- the end
    def drain(self, timeout: float = 600.0) -> dict[str, Any]:
        """Platform back to normal; wait until the outbox has nothing left to send."""
        self.sim.mode("normal")
        ob, drainer = self.svc.ctx.outbox, self.svc.ctx.drainer
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = ob.stats()
            if st["pending"] + st["inflight"] == 0:
                break
            drainer.notify()
            self.drv.pump(0.2)
        stats: dict[str, Any] = ob.stats()
        return stats

    def reconcile(self) -> dict[str, int]:
        rows = self.sim.applications()
        by_local: dict[str, int] = {}
        by_tracking: dict[str, int] = {}
        for r in rows:
            if r.get("local_tracking_no"):
                by_local[r["local_tracking_no"]] = by_local.get(r["local_tracking_no"], 0) + 1
            by_tracking[r["tracking_no"]] = by_tracking.get(r["tracking_no"], 0) + 1
        lost = duplicated = accepted = 0
        for shown, local in self.numbers:
            n = by_local.get(local, 0) if local else by_tracking.get(shown, 0)
            if n == 0 and shown in by_tracking:
                n = by_tracking[shown]
            accepted += 1 if n else 0
            lost += 1 if n == 0 else 0
            duplicated += 1 if n > 1 else 0
        return {"submitted": len(self.numbers), "accepted_by_platform": accepted, "lost": lost,
                "duplicated": duplicated, "platform_applications": len(rows)}


def schedule(n_visits: int, seed: int) -> list[tuple[str, str, bool]]:
    """(kind, fault, elderly) per visit: the warm-up tour, then a seeded mix with fault stretches."""
    rng = random.Random(seed)
    out: list[tuple[str, str, bool]] = []
    kinds, weights = list(KINDS), list(KINDS.values())
    for i in range(n_visits):
        if i < len(WARM_UP):
            kind, fault = WARM_UP[i]
            out.append((kind, "" if fault == "elderly" else fault, fault == "elderly"))
            continue
        kind = rng.choices(kinds, weights)[0]
        fault = ""
        stretch = (i // 20) % 10  # twenty visits in every two hundred under outage, twenty flaky
        if stretch == 4:
            fault = "outage"
        elif stretch == 7:
            fault = "flaky"
        elif i % 50 == 17:
            fault = "paper_out"
        elif i % 50 == 41:
            fault = "cover_open"
        elif i % 100 == 63:
            fault = "reader_unplug"
        if fault in ("outage", "flaky") and kind in ONLINE_ONLY.get(fault, ()):
            kind = "apply"  # these need the platform there and then: the kiosk refuses them plainly
        if kind == "apply_materials" and not fault:
            fault = rng.choice(["", "", "camera_dark", "", "camera_unplug" if i % 5 == 0 else ""])
        out.append((kind, fault, rng.random() < 0.25))
    return out


def idle_collection(collector: Any) -> dict[str, Any]:
    """After the figures: what the kiosk's idle full collection would give back (the soak never stands idle).

    Objects frozen by a visit's refreeze that died later are freed only by that collection (screens.quiet_gc),
    which a kiosk does when it stands untouched; visits back to back never reach it.
    """
    freed = collector.collect_everything()
    return {"idle_collection_freed": freed, "rss_mb_after_idle_collection": rss_mb()}


def run(visits: int, seed: int = 1, size: tuple[int, int] = (1280, 800), progress: Callable[[str], None] | None = None,
        checkpoint: Path | None = None, xvfb: bool = False, maxfps: int = 120,
        max_seconds: float | None = None, trace_memory: bool = False, stall_ms: float | None = None,
        stop_file: Path | None = None, only: str | None = None, trace_bindings: bool = False) -> dict[str, Any]:
    """Start the display, the platform and the kiosk; drive `visits` visits; measure; reconcile."""
    from screens.boot import configure_kivy, has_display, start_xvfb  # noqa: PLC0415 - no Kivy yet

    os.environ.setdefault("KIOSK_PROFILE", "development")
    xproc = None
    if xvfb:
        xproc = None if has_display() else start_xvfb(*size)
    else:  # SDL's offscreen EGL window: the same Kivy app and llvmpipe, without Xvfb's slow buffer swaps
        os.environ.pop("DISPLAY", None)
        os.environ.pop("WAYLAND_DISPLAY", None)
    configure_kivy(*size)
    from kivy.config import Config  # noqa: PLC0415 - Kivy reads its environment at import: configured above

    Config.set("graphics", "maxfps", str(maxfps))
    from kiosk.bootstrap.app import build_kiosk  # noqa: PLC0415 - drivers, outbox, requests
    from kiosk.config import load_config  # noqa: PLC0415
    from kiosk.infra.speech import NoSpeech  # noqa: PLC0415
    from screens.frame_probe import FrameGapProbe  # noqa: PLC0415 - Kivy clock
    from standins.ui_driver import harness_seconds, start_app, stop_app  # noqa: PLC0415 - Kivy: after configure_kivy

    state = Path(tempfile.mkdtemp(prefix="kiosk-soak-"))
    sim = PlatformProcess(state / "platform", seed)
    clock = SoakClock()
    cfg = load_config(cli={"ui": {"voice": True, "idle_timeout_s": 90, "idle_warning_s": 15}})
    # accelerated time, as with the idle timeout (SoakClock): the card reader and the payment are asked more
    # often than a kiosk would, so a visit waits less for nothing; what is counted (memory, descriptors,
    # threads, lost and duplicated applications, leaks) does not depend on how often they are asked.
    # The printer emulator (a stand-in in this process) still parses every receipt's ESC/POS bytes, but does not
    # render them to PNG files: that rendering grew this process by about 8 KB a printed visit (PIL), which is
    # the test peer's memory, not the kiosk's (`--only apply` with and without it: +4.8 MB and flat).
    svc = build_kiosk(cfg, simulate=True, state_dir=state / "kiosk", speech=NoSpeech(), clock=clock,
                      platform_url=sim.url, submit_wait_s=3.0, payment_timeout_s=60.0, status_interval_s=1.0,
                      thanks_s=0.05, payment_poll_s=0.2,
                      device_overrides={"idcard": {"poll_interval_s": READER_POLL_S}, "printer": {"out_dir": ""}})
    svc.start()
    app, drv = start_app(svc)
    soak = Soak(app, drv, svc, sim, clock, seed)
    probe = FrameGapProbe(outside=harness_seconds, stall_ms=stall_ms,
                          context=lambda: f"{soak.doing} on {app.root.sm.current}")
    plan = schedule(visits, seed)
    if only:  # one flow kind after the warm-up tour, no faults, never elderly: which flow does memory grow with?
        plan = plan[:len(WARM_UP)] + [(only, "", False)] * max(0, visits - len(WARM_UP))
    warm = min(len(WARM_UP), visits)
    start: dict[str, Any] = {}
    t0 = time.monotonic()
    out: dict[str, Any] = {}
    rss_curve: list[float] = []
    bindings0 = None
    fds_at_start: dict[str, str] = {}
    try:
        drv.wait_until(lambda: svc.ctx.ready.is_set(), timeout=60, what="kiosk ready")
        done = 0
        for n, (kind, fault, elderly) in enumerate(plan):
            if n >= warm and ((max_seconds is not None and time.monotonic() - t0 > max_seconds)
                              or (stop_file is not None and stop_file.exists())):
                break  # out of time: stop starting visits; the books are still drained and reconciled
            if n == warm:
                soak.rest()
                sim.http.close()  # the harness's own connection to the simulator is not the kiosk's descriptor
                start = {"rss_mb_start": rss_mb(), "fds_start": fds(), "threads_start": threads(),
                         "gc_frozen_start": gc.get_freeze_count()}
                fds_at_start = fd_targets()
                probe.start()
                if trace_memory:
                    tracemalloc.start(12)
                    snap0 = tracemalloc.take_snapshot()
                if trace_bindings:
                    bindings0 = census()
            soak.visit(n, kind, fault, elderly)
            done = n + 1
            if done % 100 == 0:
                rss_curve.append(rss_mb())  # growth that levels off (caches filling) or keeps going (a leak)
            if progress and (n + 1) % 100 == 0:
                progress(f"soak: {n + 1}/{visits} visits, rss {rss_mb()} MB, fds {fds()}, threads {threads()}, "
                         f"failures {len(soak.failures)}, leaks {len(soak.leaks)}, "
                         f"{(time.monotonic() - t0) / (n + 1):.2f} s/visit")
            if checkpoint and (n + 1) % 50 == 0:
                checkpoint.write_text(json.dumps({"visits_done": n + 1, "rss_mb": rss_mb(), "fds": fds(),
                                                  "threads": threads(), **start, **probe.summary(),
                                                  "rss_mb_every_100_visits": rss_curve,
                                                  "failures": len(soak.failures), "leaks": len(soak.leaks)}))
        if not start:
            start = {"rss_mb_start": rss_mb(), "fds_start": fds(), "threads_start": threads()}
        probe.stop()
        if soak.svc.mode.elderly:
            soak.press("nav-elderly")
        outbox = soak.drain()
        books = soak.reconcile()
        if trace_memory and tracemalloc.is_tracing():
            diff = tracemalloc.take_snapshot().compare_to(snap0, "traceback")
            books["python_memory_growth_top"] = [
                {"kb": round(d.size_diff / 1024, 1), "count": d.count_diff,
                 "where": [f"{'/'.join(f.filename.split('/')[-3:])}:{f.lineno}"
                           for f in list(d.traceback)[-6:]]}
                for d in diff[:12]]
            tracemalloc.stop()
        if bindings0 is not None:
            books["kivy_observers_growth_top"] = growth(bindings0, census())
        soak.rest()  # as before the start was counted
        sim.http.close()  # as at the start: only the kiosk's descriptors are counted
        fds_now = fd_targets()
        out = {"visits": done, "visits_planned": visits, "warm_up_visits": warm, **start,
               "fds_new_at_end": sorted(t for fd, t in fds_now.items() if fds_at_start.get(fd) != t),
               "rss_mb_end": rss_mb(), "rss_mb_every_100_visits": rss_curve, "fds_end": fds(), "threads_end": threads(),
               # objects frozen for the collector: those that die after a refreeze wait for an idle full collection,
               # which a soak of visits back to back never reaches (screens.quiet_gc)
               "gc_frozen_end": gc.get_freeze_count(), "gc_refreezes": app.collector.refreezes,
               "gc_visit_collections": app.collector.visit_collections,
               **probe.summary(), **books,
               "cross_visit_leaks": len(soak.leaks), "failed_visits": len(soak.failures),
               "outbox_failed": outbox.get("failed", 0), "outbox_left": outbox["pending"] + outbox["inflight"],
               "kinds": soak.kinds, "faults": soak.faults, "seconds_by_kind": soak.seconds,
               "cpu_s_by_thread": cpu_by_thread(), "seconds": round(time.monotonic() - t0, 1),
               "leak_examples": soak.leaks[:5], "failure_examples": soak.failures[:5],
               "window": f"{size[0]}x{size[1]}", "maxfps": maxfps, "display": "xvfb" if xvfb else "offscreen",
               "gl": os.environ.get("KIVY_GL_BACKEND") or "real",
               "date": _dt.date.today().isoformat()}
        out.update(idle_collection(app.collector))
    except Exception:  # noqa: BLE001 - the soak reports what broke instead of a bare traceback
        log.exception("soak stopped by an error")
        out = {"visits": visits, "error": traceback.format_exc(), "failure_examples": soak.failures[:5]}
    finally:
        stop_app(app)
        svc.stop()
        sim.stop()
        if xproc is not None:
            xproc.terminate()
            xproc.wait(timeout=10)
        shutil.rmtree(state, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--visits", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", default="1280x800", help="window WxH")
    ap.add_argument("--xvfb", action="store_true",
                    help="render in an Xvfb (the default is SDL's offscreen EGL window: see docs/benchmarks.md)")
    ap.add_argument("--maxfps", type=int, default=120,
                    help="Kivy's frame cap (the frame gaps' floor; a driven press takes a few frames)")
    ap.add_argument("--gl", choices=("real", "mock"), default=None,
                    help="mock: Kivy's mock GL backend (no drawing: the UI thread's own work only; see "
                         "docs/benchmarks.md); default: real drawing unless KIVY_GL_BACKEND says otherwise")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop starting visits after this long (then drain and reconcile as usual)")
    ap.add_argument("--stall-ms", type=float, default=None,
                    help="also sample where the UI thread was while a frame was overdue by this much (stall_sites)")
    ap.add_argument("--only", default=None,
                    help="after the warm-up tour, only this flow kind (no faults): to see which flow memory grows with")
    ap.add_argument("--stop-file", type=Path, default=None,
                    help="stop starting visits once this file exists (the books are still drained and reconciled)")
    ap.add_argument("--trace-memory", action="store_true",
                    help="tracemalloc from the end of the warm-up: the Python allocations that grew most")
    ap.add_argument("--trace-bindings", action="store_true",
                    help="count every Kivy property observer after the warm-up and at the end: which bindings grew")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.gl == "mock":
        os.environ["KIVY_GL_BACKEND"] = "mock"
    elif args.gl == "real":
        os.environ.pop("KIVY_GL_BACKEND", None)
    w, h = (int(x) for x in args.size.lower().split("x"))
    checkpoint = args.out.with_suffix(".partial.json") if args.out else None
    res = run(args.visits, args.seed, (w, h), progress=lambda s: print(s, file=sys.stderr, flush=True),
              checkpoint=checkpoint, xvfb=args.xvfb, maxfps=args.maxfps,
              max_seconds=args.max_seconds, trace_memory=args.trace_memory, stall_ms=args.stall_ms,
              stop_file=args.stop_file, only=args.only, trace_bindings=args.trace_bindings)
    text = json.dumps(res, ensure_ascii=False, indent=None if args.json else 2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
    print(text, flush=True)
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
