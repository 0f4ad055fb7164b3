"""KioskService: configuration + catalog + session + devices + outbox + platform, for the screens."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kiosk.app.events import UiEventQueue
from kiosk.app.technician import PinGate
from kiosk.config import KioskConfig
from kiosk.speech import SpeechBackend, make_speech

log = logging.getLogger(__name__)

OFFLINE_MESSAGE = "网络中断：申请将在恢复后自动提交"


@dataclass
class StationStatus:
    """What the home screen's indicator and the technician screen show."""

    online: bool = True
    queued: int = 0
    devices: dict[str, str] = field(default_factory=dict)  # kind -> health level

    @property
    def message(self) -> str:
        if not self.online:
            return OFFLINE_MESSAGE
        if self.queued:
            return f"网络正常 · 待提交 {self.queued} 件"
        return "网络正常"


class KioskService:
    """One per kiosk process. Screens call its methods on the UI thread; it never imports Kivy."""

    def __init__(self, config: KioskConfig, *, simulate: bool = False, state_dir: str | Path | None = None,
                 speech: SpeechBackend | None = None, clock: Callable[[], float] = time.monotonic,
                 catalog: Any = None) -> None:
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
        self._catalog = catalog
        self._started = False
        self._stop = threading.Event()
        self._clear_listeners: list[Callable[[str], None]] = []
        self._last_activity = clock()
        self._warned = False
        self._visit_active = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "KioskService":
        if self._started:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self._catalog is None:
            self._catalog = _load_catalog(self.config)
        self._started = True
        return self

    def stop(self) -> None:
        self._stop.set()
        self.speech.stop()
        self._started = False

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

    def most_used(self, n: int = 6) -> list[Any]:
        by_code = {it.code: it for it in self.items()}
        chosen = [by_code[c] for c in self.config.catalog.most_used if c in by_code]
        if len(chosen) < n:
            # Without a configured list: one item of each flow kind first, then catalog order.
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
        return [it for it in self._catalog.search(query, limit=limit + len(disabled)) if it.code not in disabled][:limit]

    def item(self, code: str) -> Any:
        return self._catalog.get(code)

    # ------------------------------------------------------------------ modes
    def set_elderly(self, on: bool) -> None:
        self.elderly = bool(on)
        self.say("长辈版已打开，字更大，时间更长" if on else "已切换到标准版", key="elderly_on" if on else "elderly_off")

    @property
    def items_per_page(self) -> int:
        return self.config.ui.elderly_items_per_page if self.elderly else self.config.ui.items_per_page

    @property
    def idle_timeout_s(self) -> float:
        return self.config.ui.elderly_idle_timeout_s if self.elderly else self.config.ui.idle_timeout_s

    def say(self, text: str, key: str | None = None) -> None:
        """Spoken prompt: always in elderly mode, otherwise only when voice is on in config."""
        if self.elderly or self.config.ui.voice:
            self.speech.say(text, key)

    # ------------------------------------------------------------------ visit and idle
    def add_clear_listener(self, fn: Callable[[str], None]) -> None:
        """`fn(reason)` runs when the visit ends or times out: the UI clears every screen."""
        self._clear_listeners.append(fn)

    def touch(self) -> None:
        """The citizen did something: restart the idle countdown."""
        self._last_activity = self.clock()
        self._warned = False

    def tick(self) -> None:
        """Called about once a second on the UI clock: idle warning and timeout."""
        if not self.visit_active:
            return
        idle = self.clock() - self._last_activity
        remaining = self.idle_timeout_s - idle
        if remaining <= 0:
            self.end_visit("timeout")
        elif remaining <= self.config.ui.idle_warning_s:
            self.events.post("idle_warning", remaining=remaining)

    @property
    def visit_active(self) -> bool:
        return self._visit_active

    def begin_visit(self) -> None:
        self._visit_active = True
        self.touch()

    def end_visit(self, reason: str = "end") -> None:
        """End the visit: drop everything personal, tell listeners to clear the screen."""
        self._visit_active = False
        self.events.clear()
        self.speech.stop()
        for fn in list(self._clear_listeners):
            fn(reason)

    # ------------------------------------------------------------------ devices
    def missing_devices(self, kinds: tuple[str, ...] | list[str]) -> list[str]:
        """Those of `kinds` that are down (a screen that needs them cannot work)."""
        return [k for k in kinds if self.status.devices.get(k) == "down"]

    # ------------------------------------------------------------------ station
    def announcements(self) -> list[str]:
        return [a.text for a in self.config.announcements]


def _load_catalog(config: KioskConfig) -> Any:
    try:
        from kiosk.catalog import load_catalog
    except ModuleNotFoundError as e:
        if e.name != "kiosk.catalog":
            raise
        log.warning("catalog module not available yet: no items")
        return None
    path = config.resolve_path(config.catalog.path) if config.catalog.path else None
    return load_catalog(path)
