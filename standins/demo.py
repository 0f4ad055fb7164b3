"""The scripted walk-through behind `kiosk demo --out DIR`: a whole evening at the kiosk, in pictures.

Runs the real app with the simulated devices and the in-process platform
simulator, taps through it like a citizen, and after each step writes
``NN-step.png`` and a line of ``walkthrough.json`` (screen name, outbox counts,
platform mode and case count, and what a step checked: the slip it printed, the
application or evaluation the platform simulator received). The printer emulator
renders each receipt and slip to ``receipts/``.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, cast

import cv2  # the demo's synthetic face; the demo is loaded only by `kiosk demo`

from devices.idcard.known_answer import sample_card
from kiosk.app.services import Kiosk
from kiosk.config import load_config
from kiosk.infra.speech import RecordingSpeech
from standins.camera_scenes import make_face_frame
from standins.licence_registry import PEOPLE, make_licence_qr
from standins.ui_driver import start_app, stop_app

#: builds the kiosk's services (kiosk.bootstrap.app.build_kiosk, handed in by `kiosk demo`)
KioskBuilder = Callable[..., Kiosk]

MATERIALS_ITEM = "QHB-RS-027"  # 就业困难人员认定: form + one paper
CERT_ITEM = "QHB-RS-008"  # 个人参保缴费证明查询打印
LICENCE_ITEM = "QHB-SS-003"  # 个体工商户变更登记（变更地址）: an e-licence 不动产权证书 for the premises
LICENCE_REF = "ELZB0000000104"  # 张桂兰's 不动产权证书 in the simulator's e-licence library
PROPERTY_ITEM = "QHB-BDC-004"  # 不动产登记信息查询: public, no identification


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
                device_overrides={"printer": {"out_dir": str(receipts)}}, submit_wait_s=3.0,
                thanks_s=0.5)  # the thank-you after a rating is not in a picture
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
    printer = devices["printer"]

    def record(name: str, note: str = "", **shown: Any) -> None:
        """One step: a screenshot and a line of walkthrough.json (``shown``: what the step checked)."""
        n = len(steps) + 1
        png = out / f"{n:02d}-{name}.png"
        drv.pump(0.3)
        drv.screenshot(png)
        ob = outbox.stats()
        cases = sim.state.db.execute("SELECT count(*) FROM applications").fetchone()[0]
        steps.append({"step": n, "name": name, "screen": app.current, "png": png.name, "note": note,
                      "outbox": {k: ob[k] for k in ("pending", "inflight", "done", "failed")},
                      "platform": {"mode": sim.options.mode, "cases": cases, "online": svc.ctx.status.online},
                      **shown})
        log(f"{n:02d} {name:<22} screen={app.current:<14} outbox pending={ob['pending']} done={ob['done']} "
            f"platform={sim.options.mode}")

    def take_card_away() -> None:
        """The villager takes the card: the reader sees it go before the next card comes (a swap within one poll
        would look like the same card still lying there)."""
        reader = devices["idcard"]
        reader.remove_card()
        drv.wait_until(lambda: reader.current_card is None, what="card taken away")

    def identify_with_card() -> None:
        drv.wait_screen("identify")
        devices["idcard"].insert_card()
        drv.wait_until(lambda: drv.has("identify-next") or drv.has("identify-face"), what="card read")

    def print_slip(button: str, printed: Callable[[], bool]) -> dict[str, Any]:
        """Tap a print button, wait for the screen's 「已打印」 and the slip: its picture and first lines."""
        emu = printer.emulator
        drv.wait_until(lambda: printer.status.state.value == "ready", what="printer ready", timeout=30)
        before = len(emu.complete_receipts)
        drv.tap(button)
        drv.wait_until(printed, what=f"{button}: printed", timeout=30)
        drv.wait_until(lambda: len(emu.complete_receipts) > before, what="the slip out of the printer", timeout=30)
        rec = emu.complete_receipts[before]
        lines = [line.strip() for line in rec.text().splitlines() if line.strip()]
        return {"png": rec.png.name if rec.png else "", "head": lines[:3]}

    def application_of(item: str) -> dict[str, Any]:
        """The latest application for ``item`` as the platform simulator received it."""
        row = sim.state.db.execute("SELECT body FROM applications WHERE item_code=? ORDER BY created_at DESC",
                                   (item,)).fetchone()
        return cast(dict[str, Any], json.loads(row[0])) if row else {}

    def evaluation_of(tracking_no: str) -> dict[str, Any]:
        """The evaluation the platform simulator accepted for the case ``tracking_no``."""
        for (body,) in sim.state.db.execute("SELECT body FROM records WHERE kind='evaluation'").fetchall():
            ev = json.loads(body)
            if ev.get("tracking_no") == tracking_no:
                return cast(dict[str, Any], ev)
        return {}

    def drained() -> None:
        """Wait until the outbox has delivered everything (the drainer runs in the background)."""
        drv.wait_until(lambda: outbox.stats()["pending"] + outbox.stats()["inflight"] == 0,
                       what="queue drained", timeout=60)

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
        gs = app.screen("guide")
        slip = print_slip("guide-print", lambda: "已打印" in gs.print_message)
        record("guide-print", "打印告知单：条件、材料和代替办法、收费、时限、在岗时间、帮办电话", slip=slip)
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
        take_card_away()
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
        take_card_away()
        record("idle-wipe", "超时：个人信息已清除，回到首页")
        sim.options.mode = "normal"  # the uplink comes back
        drainer.notify()
        drained()
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
        take_card_away()
        # an e-licence instead of a photo: 张桂兰 moves her shop; her 不动产权证书 comes from the library
        zhang = PEOPLE["zhang"]
        app.go("guide", code=LICENCE_ITEM)
        drv.wait_screen("guide")
        drv.tap("guide-start")
        drv.wait_screen("identify")
        devices["idcard"].insert_card(sample_card(name=zhang["name"], sex="女", birth_date=date(1952, 3, 15),
                                                  id_number=zhang["id_number"]))
        drv.wait_until(lambda: drv.has("identify-next"), what="identified")
        svc.visit.set_form({"new_premises": "山东省淄博市周村区丝绸路8号", "phone": "13912345678"})  # the helper typed
        drv.tap("identify-next")
        drv.wait_screen("form")
        drv.tap("form-next")
        drv.tap("form-next")
        drv.wait_screen("materials")
        ms = app.screen("materials")
        record("licence-offer", "调取电子证照在先，拍照在后", mode=ms.mode)
        devices["qr"].scan(make_licence_qr(LICENCE_REF))  # shown in her 爱山东 app
        drv.wait_until(lambda: ms.fetched or (ms.error and not ms.fetching), what="e-licence", timeout=20)
        on_screen = " ".join(drv.texts())
        record("licence-fetched", "电子证照代替拍照：持证人已遮盖", fetched=ms.fetched, title=ms.licence_title,
               holder_masked=zhang["name"] not in on_screen and zhang["id_number"] not in on_screen)
        drv.tap("materials-next")
        drv.wait_screen("review")
        drv.tap("review-submit")
        drv.wait_screen("receipt", timeout=30)
        rc = app.screen("receipt")
        drv.wait_until(lambda: "打印" in rc.print_message and "正在" not in rc.print_message, what="print")
        licence_no = rc.tracking_no
        drained()  # at the platform (at once, or by the drainer on a slow line)
        body = application_of(LICENCE_ITEM)
        record("licence-submitted", "申请只带证照编号，没有照片",
               application={"licences": body.get("licences", []), "photos": len(body.get("materials", []))})
        drv.tap("nav-home")  # she does not rate now: later, by the receipt
        drv.wait_screen("home")
        take_card_away()
        # the public real-estate query: no card, never the owner
        app.go("guide", code=PROPERTY_ITEM)
        drv.wait_screen("guide")
        drv.tap("guide-start")
        drv.wait_screen("property")
        ps = app.screen("property")
        drv.type_keys("scl")  # 丝绸路 by its pinyin initials (坐落; the certificate and unit numbers are the others)
        drv.tap("word-0")
        drv.tap("key-NUM")
        drv.type_keys(["1", "6", "8", "号"])
        drv.tap("property-search")
        drv.wait_until(lambda: ps.stage == "results" or ps.error, what="property results", timeout=20)
        slip = print_slip("property-print", lambda: "已打印" in ps.print_message)
        record("property-results", "按坐落查询：自然状况和限制信息，不显示权利人；打印查询单",
               results=len(ps.results_box.children), message=ps.message, slip=slip)
        drv.tap("property-done")
        drv.wait_screen("home")
        # later, her case is finished: she scans the receipt's QR code on the home screen to rate it
        step_s = sim.options.progress_step_s
        sim.options.progress_step_s = 0.001
        qr = devices["qr"]
        qr.deduper.window_s = 0.0  # each scan is the receipt held up anew
        qr.scan(f"QHB1:{licence_no}")
        drv.wait_screen("progress")
        drv.wait_until(lambda: drv.has("progress-rate"), what="「评价」 offered", timeout=20)
        record("rating-later-progress", "扫回执二维码：办结了，可以评价")
        drv.tap("progress-rate")
        drv.wait_screen("rating")
        rs = app.screen("rating")
        drv.tap("rate-3")  # 不满意: the standard's reasons
        drv.tap("reason-0")
        record("rating-later", "事后评价：按国家标准选原因，可写补充说明")
        drv.tap("rating-send")
        drv.wait_until(lambda: rs.thanks or rs.refused, what="evaluation answered", timeout=20)
        drained()  # delivered before the thanks, or queued on a slow line and delivered by the drainer
        evaluation = evaluation_of(licence_no)
        steps[-1]["evaluation"] = {k: evaluation.get(k) for k in (
            "level", "reasons", "later", "indicator_set_version")}
        drv.wait_screen("home", timeout=10)
        qr.scan(f"QHB1:{licence_no}")  # the same receipt again
        drv.wait_screen("progress")
        pr = app.screen("progress")
        drv.wait_until(lambda: bool(pr.rate_note), what="rating note", timeout=20)
        record("rating-later-again", "同一件事只能评价一次", offered=drv.has("progress-rate"), rate_note=pr.rate_note)
        drv.tap("progress-done")
        drv.wait_screen("home")
        sim.options.progress_step_s = step_s
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
