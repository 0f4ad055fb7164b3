"""KioskService: configuration + catalog + session + devices + outbox + platform, for the screens.

Screens call its methods on the UI thread and get answers either at once (catalog,
display models) or later as UiEvents on `events` (anything that waits for a device
or the network). Device callbacks arrive on device threads and are only ever
turned into UiEvents here; the UI drains them on its clock.
"""
from __future__ import annotations

import base64
import concurrent.futures as cf
import datetime as _dt
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kiosk.app.events import UiEventQueue
from kiosk.app.technician import PinGate
from kiosk.config import KioskConfig
from kiosk.domain.identity import mask_id_number, mask_name, mask_phone
from kiosk.domain.session import InvalidTransition, Session, State
from kiosk.infra.speech import SpeechBackend, make_speech

log = logging.getLogger(__name__)

OFFLINE_MESSAGE = "网络中断：申请将在恢复后自动提交"
FLOW_NAMES = {"apply": "申请办理", "query_print": "证明打印", "pay": "缴费", "certify": "资格认证"}
#: which devices each flow cannot do without
FLOW_NEEDS = {"apply": ("idcard",), "query_print": ("idcard", "camera"), "pay": ("idcard",),
              "certify": ("idcard", "camera")}
CARD_ID_TYPES = {"resident": "resident_id", "foreigner": "foreign_permanent_resident",
                 "foreigner_2023": "foreign_permanent_resident", "hmt": "hk_macau_tw_permit"}
#: platform certificate kinds for query_print items, by a phrase of the item's name; other items ask by code
CERTIFICATE_KINDS = {"参保缴费": "social_insurance_record", "医疗保险参保": "medical_insurance_record",
                     "公积金": "provident_fund_record", "户籍": "household_register"}
VISIT_TIMES = {"明天上午": 1, "明天下午": 1, "后天上午": 2, "后天下午": 2}


@dataclass
class StationStatus:
    """What the home screen's indicator and the technician screen show."""

    online: bool = True
    queued: int = 0
    failed: int = 0
    devices: dict[str, str] = field(default_factory=dict)  # kind -> ready/busy/offline/error/missing

    @property
    def message(self) -> str:
        if not self.online:
            return OFFLINE_MESSAGE
        if self.queued:
            return f"网络正常 · 待提交 {self.queued} 件"
        return "网络正常"


def _limit_text(v: Any) -> str:
    if isinstance(v, int):
        return "当场办结" if v == 0 else f"{v}个工作日"
    return str(v or "")


class KioskService:
    """One per kiosk process. Never imports Kivy."""

    def __init__(self, config: KioskConfig, *, simulate: bool = False, state_dir: str | Path | None = None,
                 speech: SpeechBackend | None = None, clock: Callable[[], float] = time.monotonic,
                 catalog: Any = None, platform_url: str | None = None, device_overrides: dict | None = None,
                 submit_wait_s: float = 4.0, payment_timeout_s: float = 180.0, status_interval_s: float = 3.0,
                 thanks_s: float = 2.0) -> None:
        self.config = config
        self.simulate = simulate
        self.state_dir = Path(state_dir) if state_dir else config.data_dir
        self.clock = clock
        self.events = UiEventQueue()
        self.speech = speech or make_speech(config.ui.voice_backend, config.ui.voice)
        self.elderly = config.ui.elderly_mode
        self.status = StationStatus()
        self.pin_gate = PinGate(config.ui.technician_pin, config.ui.technician_lockout_attempts,
                                config.ui.technician_lockout_s, clock=clock)
        self.session = Session(self._timeout_for(self.elderly), config.ui.idle_warning_s, clock=clock)
        self.session.on("wipe", self._on_wipe)
        self.session.on("warning", lambda left: self.events.post("idle_warning", remaining=left))
        self.submit_wait_s = submit_wait_s
        self.status_interval_s = status_interval_s
        self.thanks_s = thanks_s  # how long the rating's thank-you stays before the visit ends
        self.payment_timeout_s = payment_timeout_s
        self.devices: dict[str, Any] = {}
        self.platform: Any = None
        self.simulator: Any = None
        self.outbox: Any = None
        self.drainer: Any = None
        self.last_receipt: Any = None  # blocks of the last receipt (tests, demo)
        self._platform_url = platform_url
        self._device_overrides = device_overrides or {}
        self._catalog = catalog
        self._started = False
        self._stop = threading.Event()
        self._clear_listeners: list[Callable[[str], None]] = []
        self._pool = cf.ThreadPoolExecutor(max_workers=3, thread_name_prefix="kiosk-svc")
        self._listen: set[str] = set()  # what device events the current screen wants: identify, progress
        self._visit: dict[str, Any] = {}  # non-personal per-visit scratch (payment id, identity token)
        self._preview_on = False
        self._monitor: threading.Thread | None = None
        self.ready = threading.Event()  # platform, outbox and devices are up
        self.catalog_shown = threading.Event()  # set by a UI once it has drawn the catalog
        self._last_touch = clock()
        self.log_path: Path | None = None  # set by whoever installed the JSON log (kiosk run)
        self.restart_pending: list[str] = []  # configuration keys a pushed bundle changed that need a restart
        self.last_platform_contact: str | None = None  # ISO time of the last answer from the platform
        for kind, settings in config.devices.items():
            if settings.enabled:
                self.status.devices[kind] = "starting"

    # ------------------------------------------------------------------ lifecycle
    def start(self, background: bool = False) -> "KioskService":
        """Load the catalog, then platform, outbox and devices (on a thread when `background`).

        In the background mode the home screen can appear while the devices are still
        opening; anything that needs them waits for `ready` (a second or two at most).
        """
        if self._started:
            return self
        self._started = True
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if background:
            threading.Thread(target=self._start_rest, args=(True,), name="kiosk-start", daemon=True).start()
        else:
            self._start_rest(False)
        return self

    def _start_rest(self, background: bool) -> None:
        try:
            if self._catalog is None:
                self._catalog = _load_catalog(self.config)
            self.events.post("catalog")
            if background:  # let the UI draw the items before the devices compete for the CPU
                self.catalog_shown.wait(3.0)
            self._start_platform()
            self._start_outbox()
            self._start_devices()
            self.refresh_status()
            self._catalog.warm_search()  # pinyin index last: the home screen does not need it
        finally:
            self.ready.set()
        self.events.post("status")
        self._monitor = threading.Thread(target=self._monitor_loop, name="kiosk-status", daemon=True)
        self._monitor.start()

    def wait_ready(self, timeout: float = 60.0) -> bool:
        return self.ready.wait(timeout)

    def stop(self) -> None:
        if self._started:
            self.ready.wait(30)  # let a background start finish before tearing it down
        self._stop.set()
        self.speech.stop()
        try:
            self.session.end("shutdown")
        except Exception:  # noqa: BLE001
            log.exception("session end at shutdown failed")
        if self.drainer is not None:
            self.drainer.stop(timeout=5)
        for dev in self.devices.values():
            try:
                dev.close()
            except Exception:  # noqa: BLE001
                log.exception("closing a device failed")
        if self.platform is not None:
            self.platform.close()
        if self.outbox is not None:
            self.outbox.close()
        if self.simulator is not None:
            self.simulator.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._started = False

    def _start_platform(self) -> None:
        from kiosk.platform.client import PlatformClient

        url = self._platform_url
        if url is None and (self.simulate or self.config.platform.embedded_simulator):
            from standins.platform_sim import start_in_thread

            self.simulator = start_in_thread(self.state_dir / "platform-sim", port=0, pay_after_s=8.0,
                                             progress_step_s=20.0)
            url = self.simulator.url
        self.platform = PlatformClient.from_config(self.config, base_url=url or self.config.platform.base_url)

    def _start_outbox(self) -> None:
        from offline_cache.crypto import load_or_create_key
        from offline_cache.outbox import Outbox

        key_file = self.config.resolve_path(self.config.storage.key_file)
        if self.simulate or self._platform_url is not None:
            key_file = self.state_dir / "kiosk.key"
        self.outbox = Outbox(self.state_dir / "outbox.db", load_or_create_key(key_file))
        from offline_cache.drainer import Drainer

        self.drainer = Drainer(self.outbox, self.platform, base_backoff_s=0.5, max_backoff_s=30.0,
                               retention_s=self.config.storage.retention_days * 86400)
        self.drainer.start(poll_s=2.0)

    def _start_devices(self) -> None:
        from kiosk.bootstrap import drivers
        from devices.base import DeviceAdapter

        for kind, settings in self.config.devices.items():
            if not settings.enabled:
                continue
            d = settings.model_dump()
            d.update(settings.model_extra or {})
            if self.simulate:
                d["driver"] = "simulated"
            d.update(self._device_overrides.get(kind, {}))
            if kind == "printer" and d.get("driver") == "simulated" and "out_dir" not in d:
                d["out_dir"] = str(self.state_dir / "receipts")
            try:
                dev = drivers.create(kind, d)
            except Exception as e:  # noqa: BLE001 - an unknown/missing driver is a device that is down
                log.warning("device %s unavailable: %s", kind, e.__class__.__name__)
                self.status.devices[kind] = "missing"
                continue
            dev.add_listener(self._on_device_event)
            try:
                dev.open()
                # drivers that watch for input; the camera's preview runs only while a screen shows it
                if kind != "camera" and type(dev)._poll_once is not DeviceAdapter._poll_once:
                    dev.start_polling()
            except Exception as e:  # noqa: BLE001
                log.warning("device %s failed to open: %s", kind, e.__class__.__name__)
            self.devices[kind] = dev

    # ------------------------------------------------------------------ status
    def refresh_status(self) -> StationStatus:
        """Device states, queue counts, platform reachability (called off the UI thread)."""
        for kind, dev in list(self.devices.items()):
            self.status.devices[kind] = dev.status.state.value
        if self.outbox is not None:
            st = self.outbox.stats()
            self.status.queued = st["pending"] + st["inflight"]
            self.status.failed = st["failed"]
        self.status.online = self.platform_reachable()
        if self.status.online:
            self.last_platform_contact = _now_iso()
        return self.status

    # ------------------------------------------------------------------ pushed configuration
    def apply_live_config(self, config: KioskConfig, keys: list[str]) -> None:
        """A confirmed fleet bundle changed keys that may change while running (called off the UI thread)."""
        self.config = config
        self.session.set_timeouts(self._timeout_for(self.elderly), config.ui.idle_warning_s)
        log.info("pushed configuration applied live: %s", ", ".join(sorted(keys)))
        self.events.post("catalog")  # screens rebuild their item lists and announcements

    def request_restart_at_idle(self, keys: list[str]) -> None:
        """Keys such as device drivers or the platform address take effect at the next restart."""
        self.restart_pending = sorted(set(self.restart_pending) | set(keys))
        log.info("pushed configuration needs a restart for: %s", ", ".join(self.restart_pending))
        self.events.post("status")

    def platform_reachable(self) -> bool:
        if self.platform is None:
            return False
        try:
            self.platform.get_catalog(etag="probe")
            return True
        except Exception as e:  # noqa: BLE001
            from kiosk.platform.client import PermanentError

            return isinstance(e, PermanentError)  # it answered, just not what we asked

    def _monitor_loop(self) -> None:
        while not self._stop.wait(self.status_interval_s):
            try:
                self.refresh_status()
                self.events.post("status")
            except Exception:  # noqa: BLE001
                log.exception("status refresh failed")

    def missing_devices(self, kinds: tuple[str, ...] | list[str]) -> list[str]:
        """Those of `kinds` that cannot be used now (a screen that needs them cannot work)."""
        bad = ("offline", "error", "missing")
        return [k for k in kinds if self.status.devices.get(k, "missing") in bad]

    def everything_down(self) -> bool:
        """Every device is down: nothing can be done here, show the calm out-of-service page."""
        states = self.status.devices.values()
        return bool(self.status.devices) and all(s in ("offline", "error", "missing") for s in states)

    def working_flows_text(self) -> str:
        ok = [name for flow, name in FLOW_NAMES.items() if not self.missing_devices(FLOW_NEEDS[flow])]
        if not self.missing_devices(["qr"]):
            ok.append("办件查询（扫回执二维码）")
        ok.append("帮办代办")
        if self.missing_devices(["printer"]):
            ok.append("（打印机不能用时，回执会显示成二维码，请用手机拍下）")
        return "、".join(ok)

    # ------------------------------------------------------------------ catalog
    @property
    def catalog(self) -> Any:
        return self._catalog

    def items(self) -> list[Any]:
        if self._catalog is None:
            return []
        disabled = set(self.config.catalog.disabled)
        return [it for it in self._catalog.items if it.code not in disabled]

    def domains(self) -> list[str]:
        seen: dict[str, None] = {}
        for it in self.items():
            seen.setdefault(it.domain, None)
        return list(seen)

    def items_in(self, domain: str) -> list[Any]:
        return [it for it in self.items() if it.domain == domain]

    def items_of_flow(self, flow: str) -> list[Any]:
        return [it for it in self.items() if it.flow == flow]

    def most_used(self, n: int = 6) -> list[Any]:
        by_code = {it.code: it for it in self.items()}
        chosen = [by_code[c] for c in self.config.catalog.most_used if c in by_code]
        if len(chosen) < n:
            kinds: dict[str, Any] = {}
            for it in self.items():
                kinds.setdefault(it.flow, it)
            for it in list(kinds.values()) + self.items():
                if it not in chosen:
                    chosen.append(it)
                if len(chosen) >= n:
                    break
        return chosen[:n]

    def search(self, query: str, limit: int = 20) -> list[Any]:
        if self._catalog is None or not query:
            return []
        disabled = set(self.config.catalog.disabled)
        return [it for it in self._catalog.search(query, limit=limit + len(disabled))
                if it.code not in disabled][:limit]

    def item(self, code: str) -> Any:
        return self._catalog.get(code)

    @property
    def current_item(self) -> Any:
        code = self.session.data.item_code
        return self._catalog.get(code) if code else None

    def current_flow(self) -> str:
        it = self.current_item
        return it.flow if it is not None else ""

    def item_view(self, code: str | None = None) -> dict[str, Any]:
        """The 一次性告知 of an item, as plain strings for the guide screen."""
        it = self._catalog.get(code) if code else self.current_item
        if it is None:
            return {}
        mats = []
        for m in it.materials:
            tag = "（免提交：部门间共享）" if m.exempt_shared else ("（必须）" if m.required else "（如有）")
            mats.append(f"{m.name}{tag}" + (f"：{m.note}" if m.note else ""))
        steps = {
            "apply": ["刷身份证", "填写信息", "拍摄材料", "核对并提交", "打印回执"],
            "query_print": ["刷身份证", "拍照核验本人", "查看证明", "打印"],
            "pay": ["刷身份证", "核对账单", "手机扫码付款", "打印回执"],
            "certify": ["刷身份证", "正对摄像头拍照", "提交认证", "打印回执"],
        }[it.flow]
        return {
            "code": it.code, "title": it.title if hasattr(it, "title") else it.main_name, "domain": it.domain,
            "item_type": it.item_type, "conditions": list(it.conditions), "materials": mats,
            "promised": _limit_text(it.promised_limit), "legal": _limit_text(it.legal_limit),
            "fee": it.fee or "不收费", "flow": it.flow,
            "steps": [f"第{i + 1}步：{s}" for i, s in enumerate(steps)],
        }

    # ------------------------------------------------------------------ modes and prompts
    def _timeout_for(self, elderly: bool) -> float:
        return self.config.ui.elderly_idle_timeout_s if elderly else self.config.ui.idle_timeout_s

    def set_elderly(self, on: bool) -> None:
        self.elderly = bool(on)
        self.session.set_timeouts(self._timeout_for(self.elderly), self.config.ui.idle_warning_s)
        self.say("长辈版已打开，字更大，时间更长" if on else "已切换到标准版", key="elderly_on" if on else "elderly_off")

    @property
    def items_per_page(self) -> int:
        return self.config.ui.elderly_items_per_page if self.elderly else self.config.ui.items_per_page

    @property
    def idle_timeout_s(self) -> float:
        return self._timeout_for(self.elderly)

    def say(self, text: str, key: str | None = None) -> None:
        """Spoken prompt: always in elderly mode, otherwise when `[ui] voice` is on."""
        if self.elderly or self.config.ui.voice:
            self.speech.say(text, key)

    def announcements(self) -> list[str]:
        return [a.text for a in self.config.announcements]

    # ------------------------------------------------------------------ visit, idle, wipe
    def add_clear_listener(self, fn: Callable[[str], None]) -> None:
        """`fn(reason)` runs when the visit ends or times out: the UI clears every screen."""
        self._clear_listeners.append(fn)

    def touch(self) -> None:
        self._last_touch = self.clock()
        self.session.touch()

    def tick(self, away_from_home: bool = False) -> None:
        """Drive the idle timeout. Away from home without a visit (a half-typed search or phone
        number), the same timeout brings the screen home and clears it."""
        self.session.tick()
        if away_from_home and self.session.state is State.IDLE and \
                self.clock() - self._last_touch > self.idle_timeout_s:
            self._last_touch = self.clock()
            self.end_visit("timeout")

    def seconds_left(self) -> float | None:
        return self.session.seconds_left()

    @property
    def visit_active(self) -> bool:
        return self.session.state is not State.IDLE

    def end_visit(self, reason: str = "finished") -> None:
        """End the visit: the session wipes everything personal and listeners clear the screen."""
        self.session.end(reason)

    def _on_wipe(self, reason: str) -> None:
        self._listen.clear()
        self._visit.clear()
        self.stop_preview()
        for fn in list(self._clear_listeners):
            fn(reason)

    def choose_item(self, code: str) -> None:
        s = self.session
        if s.state in (State.IDLE, State.IDENTIFIED, State.ITEM_CHOSEN, State.DONE, State.QUEUED):
            s.choose_item(code)
        else:  # started over from the home screen in the middle of a case
            s.end("restart")
            s.choose_item(code)

    def next_screen(self, after: str) -> str:
        """The flow: which screen follows `after` for the current item."""
        it = self.current_item
        flow = it.flow if it is not None else "apply"
        target = {"query_print": "certificate_fetch", "pay": "payment", "certify": "review"}
        if after == "guide":
            return "identify"
        if after == "identify" and it is not None and it.fields:
            return "form"
        if after in ("identify", "form"):
            if flow in target:
                return target[flow]
            return "materials" if self.materials_to_capture() else "review"
        if after == "materials":
            return "review"
        if after in ("receipt", "certificate"):
            return "rating"
        return "home"

    def _to_submitting(self) -> None:
        """query_print and pay complete without a review screen: walk the session to SUBMITTING."""
        s = self.session
        if s.state is State.FORM:
            s.to_review()
        if s.state in (State.ITEM_CHOSEN, State.REVIEW):
            s.begin_submit()

    # ------------------------------------------------------------------ identify
    def start_identify(self) -> None:
        self._listen.add("identify")
        dev = self.devices.get("idcard")
        if dev is not None and getattr(dev, "current_card", None) is not None:
            self._pool.submit(self._accept_card, dev.current_card)  # card already on the reader

    def stop_identify(self) -> None:
        self._listen.discard("identify")

    def _on_device_event(self, ev: Any) -> None:
        """Device thread: turn device events into UI events; never touches a widget."""
        kind = ev.kind.value if hasattr(ev.kind, "value") else str(ev.kind)
        if kind in ("status_changed", "device_lost", "device_back"):
            dev = self.devices.get(ev.device_kind)
            if dev is not None:
                self.status.devices[ev.device_kind] = dev.status.state.value
            self.events.post("status")
            return
        if kind == "card_inserted" and ("identify" in self._listen or "progress" in self._listen):
            self._accept_card(ev.payload.get("card"))
        elif kind == "read_failed" and ("identify" in self._listen or "progress" in self._listen):
            self.events.post("identify_error", message=ev.payload.get("message") or "读卡失败，请重新放置身份证")
        elif kind == "code_scanned":
            self._on_code(ev.payload)

    def _accept_card(self, card: Any) -> None:
        if card is None:
            return
        if not getattr(card, "id_number", ""):  # the previous visit's card, already wiped, still lying there
            self.events.post("identify_error", message="请把身份证拿起来，再重新放到读卡区")
            return
        if hasattr(card, "is_expired") and card.is_expired():
            self.events.post("identify_error", message="身份证已过期，请使用有效证件，或点「帮办代办」")
            return
        try:
            self.session.identify(card, names=(card.name,))
        except InvalidTransition:
            self.session.end("restart")
            self.session.identify(card, names=(card.name,))
        self.events.post("identified", person=self.person_view())

    def _on_code(self, payload: dict) -> None:
        if payload.get("refused"):
            self.events.post("identify_error" if "identify" in self._listen else "progress_error",
                             message=payload["refused"]["message"])
            return
        kind, value = payload.get("kind"), payload.get("value")
        if kind == "tracking" and "progress" in self._listen:
            self._pool.submit(self._progress_by_tracking, value)
        elif kind == "citizen_code" and "identify" in self._listen:
            self._pool.submit(self._verify_ctid, value)

    def _verify_ctid(self, token: str) -> None:
        try:
            res = self.platform.verify_identity({"method": "ctid_qr", "token": token})
        except Exception as e:  # noqa: BLE001
            self.events.post("identify_error", message=_platform_message(e))
            return
        if not res.get("verified"):
            self.events.post("identify_error", message=res.get("reason") or "电子身份证核验未通过")
            return
        ident = res.get("identity") or {}
        person = _EIdentity(ident.get("name", ""), ident.get("id_number", ""), ident.get("id_type", "resident_id"))
        self._visit["identity_token"] = res.get("identity_token")
        self.session.identify(person, names=(person.name,))
        self.events.post("identified", person=self.person_view())

    def person_view(self) -> dict[str, str]:
        ident = self.session.data.identity
        if ident is None:
            return {}
        if hasattr(ident, "masked"):
            m = ident.masked()
            return {"name": m["name"], "id_number": m["id_number"], "valid_to": m["valid_to"]}
        return {"name": mask_name(ident.name), "id_number": mask_id_number(ident.id_number), "valid_to": "电子证照"}

    def capture_face(self) -> None:
        self._pool.submit(self._capture_face)

    def _capture_face(self) -> None:
        cam = self.devices.get("camera")
        if cam is None:
            self.events.post("face_result", ok=False, message="摄像头暂时不能使用，请点「帮办代办」")
            return
        try:
            photo = _camera_face(cam)
        except Exception as e:  # noqa: BLE001
            self.events.post("face_result", ok=False, message=getattr(e, "message", "没有拍清楚，请正对摄像头再拍一次"))
            return
        self.session.set_face_photo(photo)
        ident = self.session.data.identity
        try:
            res = self.platform.verify_identity({
                "method": "card_face", "id_type": _id_type(ident), "id_number": ident.id_number,
                "name": ident.name, "face_photo": base64.b64encode(photo).decode()})
        except Exception as e:  # noqa: BLE001
            self.events.post("face_result", ok=False, message=_platform_message(e))
            return
        if not res.get("verified"):
            self.events.post("face_result", ok=False, message=res.get("reason") or "人脸核验未通过，请重试")
            return
        self._visit["identity_token"] = res.get("identity_token")
        self.events.post("face_result", ok=True)

    # ------------------------------------------------------------------ form
    def form_fields(self) -> list[dict[str, Any]]:
        it = self.current_item
        return [{"name": f.name, "label": f.label, "type": f.type, "required": f.required,
                 "choices": list(f.choices)} for f in (it.fields if it else [])]

    def prefill(self) -> dict[str, Any]:
        """Values known from the card: the citizen confirms instead of typing."""
        ident = self.session.data.identity
        out: dict[str, Any] = dict(self.session.data.form)
        if ident is None:
            return out
        known = {"name": getattr(ident, "name", ""), "id_number": getattr(ident, "id_number", ""),
                 "address": getattr(ident, "address", ""), "sex": getattr(ident, "sex", "")}
        for f in self.form_fields():
            if f["name"] in known and known[f["name"]] and f["name"] not in out:
                out[f["name"]] = known[f["name"]]
        return out

    def validate_form(self, values: dict[str, Any]) -> dict[str, str]:
        import re

        from kiosk.domain.fields import validate_form

        it = self.current_item
        errors = validate_form(it, values)
        if it.flow in ("apply", "certify"):  # the platform's applicant needs a mobile number
            for f in it.fields:
                v = str(values.get(f.name) or "")
                if f.type == "phone" and f.name not in errors and not re.fullmatch(r"1[3-9]\d{9}", v):
                    errors[f.name] = "请填写11位手机号码，办理结果会发短信通知您"
        return errors

    def set_form(self, values: dict[str, Any]) -> None:
        s = self.session
        if s.state is State.ITEM_CHOSEN:
            s.start_form(requires_id=bool(self.current_item.requires_id))
        s.set_form(values)

    # ------------------------------------------------------------------ materials
    def materials_to_capture(self) -> list[str]:
        """Materials the citizen must show the camera: not shared data, not the ID card just read."""
        it = self.current_item
        if it is None:
            return []
        return [m.name for m in it.materials if not m.exempt_shared and "身份证" not in m.name]

    def start_preview(self) -> None:
        if not self._preview_on and "camera" in self.devices:
            self._preview_on = True
            threading.Thread(target=self._preview_loop, name="camera-preview", daemon=True).start()
        self._preview_on = True
        if self.session.state is State.FORM:
            self.session.to_materials()
        elif self.session.state is State.ITEM_CHOSEN:
            self.session.start_form(requires_id=bool(self.current_item.requires_id))
            self.session.set_form({})
            self.session.to_materials()

    def stop_preview(self) -> None:
        self._preview_on = False

    def _preview_loop(self) -> None:
        """Keeps the camera's latest preview fresh while the materials screen is open."""
        cam = self.devices["camera"]
        while self._preview_on and not self._stop.is_set():
            try:
                cam.preview_frame()
            except Exception:  # noqa: BLE001 - the status event tells the UI; keep trying
                pass
            self._stop.wait(0.3)

    def preview_frame(self) -> Any:
        """The camera's latest preview as an RGB array (UI thread, cheap), or None."""
        cam = self.devices.get("camera")
        if cam is None or not self._preview_on:
            return None
        return _bgr_to_rgb(cam.latest_preview)

    def capture_material(self, name: str) -> None:
        self._pool.submit(self._capture_material, name)

    def _capture_material(self, name: str) -> None:
        cam = self.devices.get("camera")
        if cam is None:
            self.events.post("capture_result", ok=False, message="拍摄仪暂时不能使用，请点「帮办代办」")
            return
        try:
            jpeg, preview = _camera_document(cam)
        except Exception as e:  # noqa: BLE001
            self.events.post("capture_result", ok=False, message=getattr(e, "message", "没有拍清楚，请重拍"))
            return
        self.session.add_material(name, jpeg)
        self.events.post("capture_result", ok=True, preview=preview)

    def discard_material(self, name: str) -> None:
        mats = self.session.data.materials
        for m in [m for m in mats if m.name == name]:
            m.wipe()
            mats.remove(m)

    # ------------------------------------------------------------------ review and submit
    def review_summary(self) -> list[tuple[str, str]]:
        s = self.session
        if s.state in (State.FORM, State.MATERIALS):
            s.to_review()
        elif s.state is State.ITEM_CHOSEN and self.current_flow() == "apply":
            s.start_form(requires_id=bool(self.current_item.requires_id))
            s.to_review()
        it = self.current_item
        out: list[tuple[str, str]] = [("办理事项", it.title if hasattr(it, "title") else it.main_name)]
        p = self.person_view()
        if p:
            out += [("申请人", p["name"]), ("身份证号", p["id_number"])]
        types = {f["name"]: f for f in self.form_fields()}
        for k, v in s.data.form.items():
            f = types.get(k)
            if f is None or v in (None, ""):
                continue
            out.append((f["label"], _mask_value(f["type"], k, str(v))))
        if s.data.materials:
            out.append(("已拍材料", "、".join(m.name for m in s.data.materials)))
        if s.data.face_photo:
            out.append(("本人照片", "已拍摄并核验"))
        return out

    def submit(self) -> None:
        s = self.session
        if s.state is State.FORM:
            s.to_review()
        s.begin_submit()  # from REVIEW, or ITEM_CHOSEN (an item without form)
        self._pool.submit(self._submit)

    def application_payload(self) -> tuple[dict[str, Any], list[bytes]]:
        d = self.session.data
        ident = d.identity
        form = dict(d.form)
        phone = str(form.get("phone") or form.get("contact_phone") or "")
        payload = {
            "item_code": d.item_code,
            "applicant": {"id_type": _id_type(ident), "id_number": ident.id_number, "name": ident.name,
                          "phone": phone},
            "form": form,
            "kiosk_id": self.config.kiosk.id,
            "created_at": _now_iso(),
        }
        attachments = [bytes(m.data) for m in d.materials]
        if d.face_photo:
            attachments.append(bytes(d.face_photo))
        return payload, attachments

    def _submit(self) -> None:
        self.wait_ready()
        try:
            payload, attachments = self.application_payload()
            local_no = self.outbox.enqueue("application", payload, attachments,
                                           idempotency_key=f"app-{uuid.uuid4().hex}")
        except Exception:  # noqa: BLE001
            log.exception("enqueue failed")
            self.session.submit_failed()
            self.events.post("submit_failed", message="本机保存失败，请点「帮办代办」找工作人员")
            return
        self._visit["local_no"] = local_no  # the durable receipt row: marked once the paper is out
        tracking, queued = self._wait_delivered(local_no)
        self._visit["promised_date"] = None
        try:
            self.session.submitted(tracking, queued=queued)
        except InvalidTransition:
            return  # the visit ended meanwhile
        self.refresh_status()
        self.events.post("submitted", tracking_no=tracking, queued=queued)

    def _wait_delivered(self, local_no: str) -> tuple[str, bool]:
        """Nudge the drainer and wait a little: the platform's number if it answers, else the local one."""
        if self.drainer is None:
            return local_no, True
        self.drainer.notify()
        end = time.monotonic() + self.submit_wait_s
        while time.monotonic() < end:
            rec = self.outbox.get(local_no, decrypt=False)
            if rec is not None and rec.state == "done" and rec.platform_ref:
                return rec.platform_ref, False
            if rec is not None and (rec.state == "failed" or (rec.state == "pending" and rec.attempts > 0)):
                break  # refused, or tried and the platform is unreachable: it stays queued
            time.sleep(0.1)
        return local_no, True

    # ------------------------------------------------------------------ receipt
    def receipt_data(self) -> Any:
        from kiosk.domain.receipt import Receipt

        d = self.session.data
        it = self.current_item
        ident = d.identity
        return Receipt(
            station=self.config.kiosk.station_name, brand=self.config.kiosk.brand,
            item=it.title if hasattr(it, "title") else it.main_name,
            applicant_name=getattr(ident, "name", "") or "", applicant_id=getattr(ident, "id_number", "") or "",
            tracking_no=d.tracking_no or "", submitted_at=_dt.datetime.now(),
            promised_text=_limit_text(it.promised_limit), queued=self.session.state is State.QUEUED,
            service_phone=self.config.kiosk.service_phone, helper_phone=self.config.kiosk.helper_phone)

    def print_receipt(self) -> None:
        self._pool.submit(self._print, "receipt")

    def _print(self, what: str) -> None:
        from kiosk.domain.tracking import qr_payload

        tracking = self.session.data.tracking_no or ""
        prn = self.devices.get("printer")
        try:
            if what == "receipt":
                from kiosk.domain.receipt import compose_receipt

                blocks = compose_receipt(self.receipt_data(), getattr(prn, "paper_mm", 58))
            else:
                blocks = self._visit.get("document_blocks") or []
            self.last_receipt = blocks
            if prn is None:
                raise RuntimeError("no printer")
            prn.print_blocks(blocks, what)
        except Exception as e:  # noqa: BLE001
            msg = getattr(e, "message", None) or "打印机故障，请联系工作人员"
            if "纸" in msg or getattr(e, "code", "") in ("paper_out", "paper-out", "paper_end"):
                msg = "打印机缺纸，请联系工作人员"
            self.events.post("printed", ok=False, message=msg,
                             qr_text=qr_payload(tracking) if tracking else "")
            return
        if what == "receipt" and self._visit.get("local_no") and self.outbox is not None:
            self.outbox.receipts.mark_printed(self._visit["local_no"])
        self.events.post("printed", ok=True)

    def unprinted_receipts(self, limit: int = 50) -> list[Any]:
        """Applications whose receipt never came out of the printer (survives a restart): for the technician."""
        if self.outbox is None:
            return []
        return [r for r in self.outbox.receipts.recent(limit) if r.kind == "application" and r.printed_count == 0]

    def reprint_receipt(self, number: str) -> str:
        """Print a stored application's receipt again, from its masked summary (technician action)."""
        from kiosk.domain.receipt import Receipt, compose_receipt

        r = self.outbox.receipts.get(number) if self.outbox is not None else None
        if r is None or r.kind != "application":
            return "没有找到这张回执"
        item = self._catalog.find(r.summary.get("item_code") or "") if self._catalog is not None else None
        rc = Receipt(
            station=self.config.kiosk.station_name, brand=self.config.kiosk.brand,
            item=(getattr(item, "title", None) or getattr(item, "main_name", None) or r.summary.get("item_code") or ""),
            applicant_name=r.summary.get("name") or "", applicant_id=r.summary.get("id_number") or "",
            tracking_no=r.tracking_no, submitted_at=_dt.datetime.fromtimestamp(r.created_at),
            promised_text=_limit_text(item.promised_limit) if item is not None else "", queued=r.platform_no is None,
            service_phone=self.config.kiosk.service_phone, helper_phone=self.config.kiosk.helper_phone)
        prn = self.devices.get("printer")
        try:
            if prn is None:
                raise RuntimeError("no printer")
            prn.print_blocks(compose_receipt(rc, getattr(prn, "paper_mm", 58)), "receipt")
        except Exception as e:  # noqa: BLE001
            return "补打失败：" + (getattr(e, "message", None) or "打印机故障")
        self.outbox.receipts.mark_printed(r.local_no)
        return f"已补打回执 {r.tracking_no}"

    # ------------------------------------------------------------------ rating
    def rate(self, level: str, reason: str | None = None) -> None:
        """The 好差评 record goes through the outbox like an application."""
        s = self.session
        if s.state in (State.DONE, State.QUEUED):
            s.start_rating()
        if s.state is State.RATING:
            s.rate(level)
        it = self.current_item
        body: dict[str, Any] = {"tracking_no": s.data.tracking_no or "", "level": level,
                                "kiosk_id": self.config.kiosk.id, "created_at": _now_iso()}
        if it is not None:
            body["item_code"] = it.code
        if reason:
            body["reason"] = reason
        self.wait_ready()
        self.outbox.enqueue("evaluation", body, idempotency_key=f"eval-{uuid.uuid4().hex}")
        if self.drainer is not None:
            self.drainer.notify()

    # ------------------------------------------------------------------ progress
    def start_progress_lookup(self) -> None:
        self._listen.add("progress")

    def stop_progress_lookup(self) -> None:
        self._listen.discard("progress")

    def query_progress_by_tracking(self, tracking_no: str) -> None:
        self._pool.submit(self._progress_by_tracking, tracking_no)

    def query_progress_by_identity(self) -> None:
        self._pool.submit(self._progress_by_identity)

    def _case_view(self, a: dict) -> dict[str, str]:
        code = a.get("item_code", "")
        it = self._catalog.find(code) if hasattr(self._catalog, "find") else None
        states = {"received": "已收件", "accepted": "已受理", "in_review": "审核中", "done": "已办结",
                  "returned": "已退回：" + (a.get("reason") or ""), "queued": "本机已保存，等待网络恢复后提交"}
        return {"tracking_no": a.get("tracking_no", ""), "item": (it.title if it is not None else code),
                "state": states.get(a.get("status", ""), a.get("status", ""))}

    def _progress_by_tracking(self, tracking_no: str) -> None:
        from kiosk.domain.tracking import tracking_origin

        try:
            if tracking_origin(tracking_no) == "local":
                platform_no = self.outbox.resolve(tracking_no) if self.outbox else None
                if not platform_no:
                    self.events.post("progress_result", cases=[{"tracking_no": tracking_no, "item": "",
                                                                "state": "本机已保存，等待网络恢复后提交"}])
                    return
                tracking_no = platform_no
            a = self.platform.get_application(tracking_no)
            self.events.post("progress_result", cases=[self._case_view(a)])
        except Exception as e:  # noqa: BLE001
            self.events.post("progress_error", message=_platform_message(e))

    def _progress_by_identity(self) -> None:
        ident = self.session.data.identity
        if ident is None:
            return
        try:
            apps = self.platform.search_applications(_id_type(ident), ident.id_number)
            self.events.post("progress_result", cases=[self._case_view(a) for a in apps])
        except Exception as e:  # noqa: BLE001
            self.events.post("progress_error", message=_platform_message(e))

    # ------------------------------------------------------------------ certificates
    def fetch_certificate(self) -> None:
        self._pool.submit(self._fetch_certificate)

    def _fetch_certificate(self) -> None:
        token = self._visit.get("identity_token")
        it = self.current_item
        try:
            if not token:
                raise RuntimeError("no identity token")
            kind = next((k for phrase, k in CERTIFICATE_KINDS.items() if phrase in it.title), it.code)
            doc = self.platform.get_certificate(kind, token)
        except Exception as e:  # noqa: BLE001
            self.events.post("certificate_error", message=_platform_message(e))
            return
        from kiosk.domain.receipt import QueryDocument, compose_document

        ident = self.session.data.identity
        qd = QueryDocument(title=doc["title"], station=self.config.kiosk.station_name, brand=self.config.kiosk.brand,
                           applicant_name=getattr(ident, "name", ""), applicant_id=getattr(ident, "id_number", ""),
                           fields=[("证明编号", doc.get("serial", ""))], notes=list(doc["lines"]),
                           generated_at=_dt.datetime.now(), verify_code=doc.get("verify_url"))
        prn = self.devices.get("printer")
        self._visit["document_blocks"] = compose_document(qd, getattr(prn, "paper_mm", 80) or 80)
        s = self.session
        if s.state in (State.ITEM_CHOSEN, State.FORM, State.REVIEW):
            self._to_submitting()
            s.submitted(doc.get("serial", "") or "ZM", queued=False, result={"kind": "certificate"})
        self.events.post("certificate", title=doc["title"],
                         lines=[f"持证人：{doc.get('holder', '')}", f"证明编号：{doc.get('serial', '')}"] + list(doc["lines"]))

    def print_certificate(self) -> None:
        self._pool.submit(self._print, "document")

    # ------------------------------------------------------------------ payments
    def create_payment(self) -> None:
        self._visit.pop("payment_cancel", None)
        self._pool.submit(self._create_payment)

    def cancel_payment_wait(self) -> None:
        self._visit["payment_cancel"] = True

    def _create_payment(self) -> None:
        it = self.current_item
        body = {"item_code": it.code, "kiosk_id": self.config.kiosk.id}
        if self._visit.get("identity_token"):
            body["identity_token"] = self._visit["identity_token"]
        try:
            pay = self.platform.create_payment(body, idempotency_key=f"pay-{uuid.uuid4().hex}")
        except Exception as e:  # noqa: BLE001
            self.events.post("payment_error", message=_platform_message(e))
            return
        pid = pay["payment_id"]
        self._visit["payment_id"] = pid
        yuan = pay["amount_cents"] / 100
        self.events.post("payment", qr_text=pay["qr_payload"], payment_id=pid,
                         lines=[f"缴费事项：{it.title if hasattr(it, 'title') else it.main_name}",
                                f"应缴金额：{yuan:.2f} 元", f"缴费单号：{pid}"])
        end = time.monotonic() + self.payment_timeout_s
        while time.monotonic() < end and not self._stop.is_set():
            if self._visit.get("payment_cancel") or self._visit.get("payment_id") != pid:
                return
            try:
                st = self.platform.get_payment(pid)
            except Exception:  # noqa: BLE001 - keep waiting through a blip
                st = {"status": "unpaid"}
            if st["status"] == "paid":
                s = self.session
                if s.state in (State.ITEM_CHOSEN, State.FORM, State.REVIEW):
                    self._to_submitting()
                    s.submitted(pid, queued=False, result={"kind": "payment"})
                self.events.post("payment_paid", tracking_no=pid)
                return
            if st["status"] == "expired":
                break
            self.events.post("payment_wait", remaining=end - time.monotonic())
            time.sleep(1.0)
        self.events.post("payment_error", message="等待付款超时，没有扣款。需要时请点「重新付款」")

    # ------------------------------------------------------------------ help and home visits
    def request_help(self, phone: str) -> str | None:
        """Notify the station's helper through the platform (queued); a message when the phone is wrong."""
        import re

        if not re.fullmatch(r"1[3-9]\d{9}", phone or ""):
            return "请输入11位手机号码，工作人员会给您回电"
        ident = self.session.data.identity
        body = {"topic": "自助区现场帮办", "contact": {"name": getattr(ident, "name", "") or "自助区群众",
                                                   "phone": phone},
                "kiosk_id": self.config.kiosk.id, "created_at": _now_iso()}
        it = self.current_item
        if it is not None:
            body["item_code"] = it.code
        self.wait_ready()
        self.outbox.enqueue("help_request", body, idempotency_key=f"help-{uuid.uuid4().hex}")
        if self.drainer is not None:
            self.drainer.notify()
        return None

    def book_home_visit(self, item_code: str, phone: str, when: str) -> str | None:
        """Queue a home visit; returns a message for the citizen when something is missing."""
        ident = self.session.data.identity
        if ident is None:
            return "请先在读卡区放上被服务老人的身份证"
        if not item_code:
            return "请选择要办的事"
        if when not in VISIT_TIMES:
            return "请选择上门时间"
        import re

        if not re.fullmatch(r"1[3-9]\d{9}", phone or ""):
            return "请输入11位手机号码"
        date = _dt.date.today() + _dt.timedelta(days=VISIT_TIMES[when])
        body = {"item_code": item_code,
                "applicant": {"id_type": _id_type(ident), "id_number": ident.id_number, "name": ident.name,
                              "phone": phone},
                "address": getattr(ident, "address", "") or "见身份证", "preferred_date": date.isoformat(),
                "note": when, "kiosk_id": self.config.kiosk.id, "created_at": _now_iso()}
        self.wait_ready()
        self.outbox.enqueue("home_visit", body, idempotency_key=f"visit-{uuid.uuid4().hex}")
        if self.drainer is not None:
            self.drainer.notify()
        return None

    # ------------------------------------------------------------------ technician
    def technician_unlock(self, pin: str) -> str:
        return self.pin_gate.check(pin)

    def device_kinds(self) -> list[str]:
        return sorted(self.devices)

    def technician_report(self) -> str:
        self.wait_ready()
        st = self.refresh_status()
        lines = ["设备状态："]
        for kind in sorted(set(self.devices) | set(st.devices)):
            dev = self.devices.get(kind)
            if dev is None:
                lines.append(f"  {kind}: 未安装驱动")
                continue
            last = dev.last_health
            lines.append(f"  {kind} ({dev.driver}): {dev.status.state.value} {dev.status.message}"
                         + (f"；上次检测 {last.level.value} {'通过' if last.ok else '失败'}" if last else ""))
        q = self.outbox.stats() if self.outbox else {}
        lines.append(f"队列：待提交 {q.get('pending', 0)}，提交中 {q.get('inflight', 0)}，"
                     f"失败 {q.get('failed', 0)}，已完成 {q.get('done', 0)}")
        lines.append(f"平台：{'可以连接' if st.online else '无法连接'}（{self.platform.base_url if self.platform else '-'}）")
        unprinted = self.unprinted_receipts()
        if unprinted:
            lines.append(f"未打印的回执：{len(unprinted)} 张（" + "、".join(r.tracking_no for r in unprinted[:5])
                         + ("……" if len(unprinted) > 5 else "") + "）")
        lines.append(f"配置版本：{self.config_version()}")
        if self.restart_pending:
            lines.append("待重启生效的配置：" + "、".join(self.restart_pending))
        return "\n".join(lines)

    def config_version(self) -> str:
        import hashlib
        import json

        raw = json.dumps(self.config.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    def device_health_text(self, kind: str) -> str:
        dev = self.devices.get(kind)
        if dev is None:
            return f"{kind}: 未安装驱动"
        out = []
        for level in ("internal", "external"):
            r = dev.health(level, timeout=5)
            out.append(f"{kind} {level}: {'通过' if r.ok else '失败'} {r.message}")
        if kind == "printer":
            try:
                dev.test_page()
                out.append("测试页已打印")
            except Exception as e:  # noqa: BLE001
                out.append("测试页失败：" + getattr(e, "message", type(e).__name__))
        return "\n".join(out)

    def drain_now(self) -> str:
        if self.drainer is None:
            return "提交程序未运行"
        rep = self.drainer.drain_once(ignore_backoff=True)
        self.refresh_status()
        return f"已提交 {rep.delivered} 件，失败 {rep.failed} 件，稍后重试 {rep.retried} 件，剩余 {rep.remaining} 件"

    def log_tail_text(self, lines: int = 30) -> str:
        """The last lines of the JSON log, redacted again on the way out."""
        from kiosk.infra.logs import tail

        path = self.log_path or self.config.resolve_path(self.config.logging.dir) / "kiosk.jsonl"
        got = tail(path, lines)
        return "\n".join(got) if got else "（暂无日志）"


# ---------------------------------------------------------------------- helpers
class _EIdentity:
    """An identity verified from the electronic ID QR (no card data)."""

    def __init__(self, name: str, id_number: str, id_type: str) -> None:
        self.name, self.id_number, self.id_type = name, id_number, id_type
        self.address = ""

    def wipe(self) -> None:
        self.name = self.id_number = ""


def _id_type(ident: Any) -> str:
    if ident is None:
        return "resident_id"
    if getattr(ident, "id_type", None):
        return ident.id_type
    return CARD_ID_TYPES.get(getattr(ident, "card_type", "resident"), "resident_id")


def _mask_value(ftype: str, name: str, v: str) -> str:
    if ftype == "phone":
        return mask_phone(v)
    if ftype in ("id_number",):
        return mask_id_number(v)
    if ftype == "bank_account":
        return mask_id_number(v)
    if name in ("name", "applicant_name"):
        return mask_name(v)
    if name == "address":
        return v[:6] + "*" * max(0, len(v) - 6)
    return v


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _platform_message(e: Exception) -> str:
    detail = getattr(e, "detail", "")
    if detail:
        return detail
    from kiosk.platform.client import RetryableError

    if isinstance(e, RetryableError):
        return "网络中断，暂时查不到。请稍后再试，或点「帮办代办」"
    return "暂时无法办理，请点「帮办代办」找工作人员"


class CaptureProblem(Exception):
    """A capture the citizen must retake; `message` says how."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _bgr_to_rgb(img: Any, max_w: int = 800) -> Any:
    if img is None:
        return None
    import cv2

    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    if w > max_w:
        img = cv2.resize(img, (max_w, max(1, int(h * max_w / w))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _camera_face(cam: Any) -> bytes:
    res = cam.capture_face()
    if not res.ok:
        raise CaptureProblem(res.problems[0].message if res.problems else "没有拍清楚，请正对摄像头再拍一次")
    if res.crop_jpeg:
        return bytes(res.crop_jpeg)
    import cv2

    ok, buf = cv2.imencode(".jpg", res.crop)
    return buf.tobytes()


def _camera_document(cam: Any) -> tuple[bytes, Any]:
    """(JPEG of the cropped page, RGB preview of it); CaptureProblem with the quality message."""
    res = cam.scan()
    if not res.ok or not res.jpeg:
        raise CaptureProblem(res.problems[0].message if res.problems else "没有拍清楚，请重拍")
    return res.jpeg, _bgr_to_rgb(res.image)


def _load_catalog(config: KioskConfig) -> Any:
    from kiosk.domain.catalog import load_catalog

    path = config.resolve_path(config.catalog.path) if config.catalog.path else None
    return load_catalog(path)
