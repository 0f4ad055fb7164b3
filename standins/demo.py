"""The scripted walk-through behind `kiosk demo --out DIR`: a whole evening at the kiosk, in pictures.

Runs the real app with the simulated devices and the in-process platform
simulator, taps through it like a citizen, and after each step writes
``NN-step.png`` and a line of ``walkthrough.json`` (screen name, outbox counts,
platform mode and case count). The printer emulator renders each receipt to
``receipts/``.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import cv2  # the demo's synthetic face; the demo is loaded only by `kiosk demo`

from kiosk.app.services import Kiosk
from kiosk.config import load_config
from kiosk.infra.speech import RecordingSpeech
from standins.camera_scenes import make_face_frame
from standins.ui_driver import start_app, stop_app

#: builds the kiosk's services (kiosk.bootstrap.app.build_kiosk, handed in by `kiosk demo`)
KioskBuilder = Callable[..., Kiosk]

MATERIALS_ITEM = "QHB-RS-027"  # 就业困难人员认定: form + one paper
CERT_ITEM = "QHB-RS-008"  # 个人参保缴费证明查询打印


class DemoClock:
    """Monotonic time that the demo can fast-forward (to show the idle timeout without waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def run_demo(out: Path, *, build: KioskBuilder, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Walk through the kiosk with `build` (kiosk.bootstrap.app.build_kiosk) making its services."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("[0-9][0-9]-*.png"):
        old.unlink()
    receipts = out / "receipts"
    if receipts.exists():
        shutil.rmtree(receipts)
    state = Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    clock = DemoClock()
    cfg = load_config(cli={"ui": {"voice": False}})
    svc = build(cfg, simulate=True, state_dir=state, speech=RecordingSpeech(), clock=clock,
                device_overrides={"printer": {"out_dir": str(receipts)}}, submit_wait_s=3.0)
    svc.start()
    # the simulated drivers and the embedded simulator, as the concrete things the demo drives
    devices: dict[str, Any] = dict(svc.ctx.devices)
    sim: Any = cast(Any, svc.wiring).simulator
    outbox = svc.ctx.require_outbox()
    drainer = svc.ctx.drainer
    assert drainer is not None
    app, drv = start_app(svc)
    from kivy.core.window import Window  # noqa: PLC0415 - opened by start_app, after configure_kivy

    window = [int(Window.width), int(Window.height)]  # `kiosk demo --size WxH`
    steps: list[dict[str, Any]] = []

    def record(name: str, note: str = "") -> None:
        n = len(steps) + 1
        png = out / f"{n:02d}-{name}.png"
        drv.pump(0.3)
        drv.screenshot(png)
        ob = outbox.stats()
        cases = sim.state.db.execute("SELECT count(*) FROM applications").fetchone()[0]
        steps.append({"step": n, "name": name, "screen": app.current, "png": png.name, "note": note,
                      "outbox": {k: ob[k] for k in ("pending", "inflight", "done", "failed")},
                      "platform": {"mode": sim.options.mode, "cases": cases, "online": svc.ctx.status.online}})
        log(f"{n:02d} {name:<22} screen={app.current:<14} outbox pending={ob['pending']} done={ob['done']} "
            f"platform={sim.options.mode}")

    def identify_with_card() -> None:
        drv.wait_screen("identify")
        devices["idcard"].insert_card()
        drv.wait_until(lambda: drv.has("identify-next") or drv.has("identify-face"), what="card read")

    def fill_form() -> None:
        form = app.screen("form")
        for _ in range(len(form.fields)):
            f = form.field
            if f["type"] == "choice":
                drv.tap("choice-0")
            elif f["type"] == "phone":
                drv.type_keys("13912345678")
            elif f["type"] == "number":
                drv.type_keys("1")
            if form.index == len(form.fields) - 1:
                record("form", "每项一页，数字键盘，选项按钮")
            drv.tap("form-next")

    try:
        record("home", "首页：领域、常用事项、网络状态")
        drv.tap("home-search")
        drv.type_keys("jykn")
        record("search", "拼音首字母 JYKN")
        drv.tap(f"item-{MATERIALS_ITEM}")
        drv.wait_screen("guide")
        record("guide", "一次性告知")
        drv.tap("guide-start")
        identify_with_card()
        record("identify", "读身份证，姓名和证件号已遮盖")
        drv.tap("identify-next")
        drv.wait_screen("form")
        fill_form()
        drv.wait_screen("materials")
        ms = app.screen("materials")
        drv.wait_until(lambda: ms.preview.texture is not None, what="preview")
        drv.tap("materials-capture")
        drv.wait_until(lambda: ms.reviewing or ms.error, what="capture", timeout=30)
        record("materials", "拍摄申请表：裁剪后的结果")
        drv.tap("materials-next")
        drv.wait_screen("review")
        sim.options.mode = "outage"  # the village uplink goes down
        record("review", "核对信息（已遮盖）；此时平台中断")
        drv.tap("review-submit")
        drv.wait_screen("receipt", timeout=30)
        rc = app.screen("receipt")
        drv.wait_until(lambda: "打印" in rc.print_message and "正在" not in rc.print_message, what="print")
        local_no = rc.tracking_no
        record("submit-offline-receipt", f"网络中断：本机保存，本地编号 {local_no}")
        drv.tap("receipt-done")
        drv.wait_screen("rating")
        record("rating", "好差评：五个大按钮")
        drv.tap("rate-0")
        drv.wait_screen("home", timeout=10)
        devices["idcard"].remove_card()
        drv.wait_until(lambda: not svc.ctx.status.online, what="offline indicator", timeout=15)
        record("home-offline", "首页提示：网络中断，申请将在恢复后自动提交")
        # a second villager walks away in the middle of a form
        app.go("guide", code=MATERIALS_ITEM)
        drv.tap("guide-start")
        identify_with_card()
        drv.tap("identify-next")
        drv.wait_screen("form")
        clock.offset += svc.ctx.session.idle_timeout_s - svc.ctx.config.ui.idle_warning_s + 1
        drv.wait_until(lambda: app.root.idle_banner.active, what="idle warning")
        record("idle-countdown", "无操作倒计时（横幅，不遮挡）")
        clock.offset += svc.ctx.config.ui.idle_warning_s + 1
        drv.wait_screen("home")
        devices["idcard"].remove_card()
        record("idle-wipe", "超时：个人信息已清除，回到首页")
        sim.options.mode = "normal"  # the uplink comes back
        drainer.notify()
        drv.wait_until(lambda: outbox.stats()["pending"] + outbox.stats()["inflight"] == 0,
                       what="queue drained", timeout=60)
        drv.wait_until(lambda: svc.ctx.status.online, what="online indicator", timeout=15)
        record("network-back-drained", "网络恢复：队列已自动提交")
        drv.tap("home-progress")
        drv.wait_screen("progress")
        devices["qr"].scan(f"QHB1:{local_no}")
        pr = app.screen("progress")
        drv.wait_until(lambda: pr.has_results or pr.error, what="progress", timeout=15)
        record("progress-query", "扫回执二维码查询进度")
        drv.tap("progress-done")
        drv.wait_screen("home")
        face = state / "face.png"
        _write_face(face)
        cam = devices["camera"]
        cam.images = [str(face)]
        drv.tap("home-certificate")
        drv.wait_screen("certificate")
        drv.tap(f"item-{CERT_ITEM}")
        identify_with_card()
        drv.tap("identify-face")
        ids = app.screen("identify")
        drv.wait_until(lambda: ids.face_done or ids.error, what="face check", timeout=30)
        cam.images = []
        drv.tap("identify-next")
        drv.wait_screen("form")
        form = app.screen("form")
        for _ in range(len(form.fields)):
            if form.field["type"] == "choice":
                drv.tap("choice-0")
            drv.tap("form-next")
        drv.wait_screen("certificate")
        cs = app.screen("certificate")
        drv.wait_until(lambda: cs.stage == "preview" or cs.error, what="certificate", timeout=20)
        drv.tap("certificate-print")
        drv.wait_until(lambda: cs.stage == "printed", what="printed", timeout=20)
        record("certificate-print", "证明打印：人脸核验后打印")
        drv.tap("certificate-done")
        drv.wait_screen("rating")
        drv.tap("rating-skip")
        drv.wait_screen("home")
        devices["idcard"].remove_card()
        drv.tap("nav-elderly")
        record("elderly-home", "长辈版：字更大、按钮更大、每页更少")
        drv.tap("home-search")
        record("elderly-search", "长辈版的拼音键盘")
        drv.tap("nav-elderly")
        drv.tap("nav-home")
    finally:
        stop_app(app)
        svc.stop()
        shutil.rmtree(state, ignore_errors=True)
    (out / "walkthrough.json").write_text(json.dumps({"steps": steps, "window": window, "receipts": sorted(
        p.name for p in receipts.glob("*.png"))}, ensure_ascii=False, indent=2), encoding="utf-8")
    return steps


def _write_face(path: Path) -> None:
    """A synthetic citizen in front of the camera (the demo has no real face to show)."""

    cv2.imwrite(str(path), make_face_frame([(0.5, 0.45, 0.3)], size=(1632, 1224)))
