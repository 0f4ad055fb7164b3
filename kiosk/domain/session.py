"""One citizen's visit as a state machine, free of Kivy and of wall-clock time.

The session is the only place personal data lives while a citizen is at the
terminal. Ending the visit (done, cancelled, or walked away) wipes it and tells
every listener to clear the screen, so nothing is left for the next person.
"""
from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiosk.domain.redaction import REDACTOR

log = logging.getLogger(__name__)


class State(str, enum.Enum):
    IDLE = "idle"
    IDENTIFIED = "identified"
    ITEM_CHOSEN = "item_chosen"
    FORM = "form"
    MATERIALS = "materials"
    REVIEW = "review"
    SUBMITTING = "submitting"
    DONE = "done"
    QUEUED = "queued"
    RATING = "rating"


S = State
#: Allowed forward moves. Any state may also end() back to IDLE.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.IDLE: frozenset({S.IDENTIFIED, S.ITEM_CHOSEN}),
    S.IDENTIFIED: frozenset({S.ITEM_CHOSEN}),
    # identify after choosing the item keeps ITEM_CHOSEN; query_print/pay/certify go straight to SUBMITTING
    S.ITEM_CHOSEN: frozenset({S.IDENTIFIED, S.FORM, S.SUBMITTING}),
    S.FORM: frozenset({S.ITEM_CHOSEN, S.MATERIALS, S.REVIEW}),
    S.MATERIALS: frozenset({S.FORM, S.REVIEW}),
    S.REVIEW: frozenset({S.FORM, S.MATERIALS, S.SUBMITTING}),
    S.SUBMITTING: frozenset({S.DONE, S.QUEUED, S.REVIEW}),
    S.DONE: frozenset({S.RATING, S.ITEM_CHOSEN}),
    S.QUEUED: frozenset({S.RATING, S.ITEM_CHOSEN}),
    S.RATING: frozenset(),
}
#: States in which an unattended terminal must not cut the citizen off mid-operation.
NO_TIMEOUT = frozenset({S.IDLE, S.SUBMITTING})


class InvalidTransition(RuntimeError):
    pass


class MissingIdentity(InvalidTransition):
    """The item needs the citizen identified before the form."""


@dataclass
class CapturedMaterial:
    name: str
    data: bytearray  # bytearray so it can be zeroed on wipe
    mime: str = "image/jpeg"

    def wipe(self) -> None:
        self.data[:] = b"\x00" * len(self.data)
        self.data.clear()


@dataclass
class SessionData:
    """Everything personal a visit holds. Only Session mutates it."""

    identity: Any = None  # an IdentityCard (devices) or a verified e-ID identity
    item_code: str | None = None
    form: dict[str, Any] = field(default_factory=dict)
    materials: list[CapturedMaterial] = field(default_factory=list)
    face_photo: bytearray | None = None
    tracking_no: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    rating: str | None = None


Listener = Callable[..., None]


class Session:
    """States, idle timeout with warning, and the wipe.

    `clock` is a monotonic seconds function (injectable for tests); call `tick()`
    periodically (the UI does it on its clock) to drive timeouts.
    """

    def __init__(
        self,
        idle_timeout_s: float,
        idle_warning_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        if idle_warning_s >= idle_timeout_s:
            raise ValueError("idle warning must be shorter than the timeout")
        self.idle_timeout_s = idle_timeout_s
        self.idle_warning_s = idle_warning_s
        self._clock = clock
        self._lock = threading.RLock()
        self._state = State.IDLE
        self._data = SessionData()
        self._last_activity = clock()
        self._warned = False
        self._listeners: dict[str, list[Listener]] = {"state": [], "warning": [], "wipe": []}
        self.visit_count = 0

    # ------------------------------------------------------------- listeners
    def on(self, event: str, callback: Listener) -> None:
        """event: 'state' (old, new), 'warning' (seconds_left), 'wipe' (reason)."""
        self._listeners[event].append(callback)

    def off(self, event: str, callback: Listener) -> None:
        self._listeners[event].remove(callback)

    def _emit(self, event: str, *args: Any) -> None:
        for cb in list(self._listeners[event]):
            try:
                cb(*args)
            except Exception:  # a broken screen must not break the visit
                log.exception("session listener for %s failed", event)

    # ------------------------------------------------------------- state
    @property
    def state(self) -> State:
        return self._state

    @property
    def data(self) -> SessionData:
        return self._data

    def _goto(self, new: State) -> None:
        with self._lock:
            old = self._state
            if new not in TRANSITIONS[old]:
                raise InvalidTransition(f"{old.value} -> {new.value} is not allowed")
            if old is State.IDLE:
                self.visit_count += 1
            self._state = new
            self._touch_locked()
        self._emit("state", old, new)

    def touch(self) -> None:
        """The citizen did something: restart the idle countdown."""
        with self._lock:
            self._touch_locked()

    def _touch_locked(self) -> None:
        self._last_activity = self._clock()
        self._warned = False

    # ------------------------------------------------------------- visit steps
    def identify(self, identity: Any, names: tuple[str, ...] = ()) -> None:
        """Attach the citizen's identity. `names` are registered for log redaction."""
        with self._lock:
            state = self._state
            if state not in (State.IDLE, State.ITEM_CHOSEN, State.IDENTIFIED):
                raise InvalidTransition(f"cannot identify in state {state.value}")
            self._data.identity = identity
            REDACTOR.add(*names, getattr(identity, "name", None))
            if state is State.IDLE:
                self._goto(State.IDENTIFIED)
            else:
                self._touch_locked()

    def choose_item(self, item_code: str) -> None:
        with self._lock:
            state = self._state
            if state is State.ITEM_CHOSEN:  # changed their mind on the guide screen
                self._data.item_code = item_code
                self._touch_locked()
                return
            if State.ITEM_CHOSEN not in TRANSITIONS[state]:
                raise InvalidTransition(f"cannot choose an item in state {state.value}")
            if state in (State.DONE, State.QUEUED):
                # another item in the same visit: keep the identity, drop the rest
                self._clear_case_data()
            self._data.item_code = item_code
            self._goto(State.ITEM_CHOSEN)

    def start_form(self, requires_id: bool = True) -> None:
        if requires_id and self._data.identity is None:
            raise MissingIdentity("this item needs the citizen's identity first")
        self._goto(State.FORM)

    def set_form(self, values: dict[str, Any]) -> None:
        with self._lock:
            if self._state is not State.FORM:
                raise InvalidTransition(f"cannot fill the form in state {self._state.value}")
            self._data.form = dict(values)
            self._touch_locked()

    def to_materials(self) -> None:
        self._goto(State.MATERIALS)

    def add_material(self, name: str, data: bytes, mime: str = "image/jpeg") -> None:
        with self._lock:
            if self._state is not State.MATERIALS:
                raise InvalidTransition(f"cannot capture materials in state {self._state.value}")
            self._data.materials.append(CapturedMaterial(name, bytearray(data), mime))
            self._touch_locked()

    def set_face_photo(self, data: bytes) -> None:
        with self._lock:
            self._data.face_photo = bytearray(data)
            self._touch_locked()

    def to_review(self) -> None:
        self._goto(State.REVIEW)

    def back(self, to: State) -> None:
        self._goto(to)

    def begin_submit(self) -> None:
        self._goto(State.SUBMITTING)

    def submitted(self, tracking_no: str, queued: bool, result: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._data.tracking_no = tracking_no
            self._data.result = dict(result or {})
        self._goto(State.QUEUED if queued else State.DONE)

    def submit_failed(self) -> None:
        """A permanent refusal: back to review so the citizen can correct or ask for help."""
        self._goto(State.REVIEW)

    def start_rating(self) -> None:
        self._goto(State.RATING)

    def rate(self, level: str) -> None:
        with self._lock:
            if self._state is not State.RATING:
                raise InvalidTransition("rating only after a completed case")
            self._data.rating = level
            self._touch_locked()

    # ------------------------------------------------------------- ending
    def end(self, reason: str = "finished") -> None:
        """Back to idle; wipe everything personal; tell listeners to clear the screen."""
        with self._lock:
            old = self._state
            self._wipe_locked()
            self._state = State.IDLE
            self._touch_locked()
        if old is not State.IDLE:
            self._emit("state", old, State.IDLE)
        self._emit("wipe", reason)

    def _clear_case_data(self) -> None:
        d = self._data
        for m in d.materials:
            m.wipe()
        if d.face_photo is not None:
            d.face_photo[:] = b"\x00" * len(d.face_photo)
        self._data = SessionData(identity=d.identity)

    def _wipe_locked(self) -> None:
        d = self._data
        ident = d.identity
        for m in d.materials:
            m.wipe()
        if d.face_photo is not None:
            d.face_photo[:] = b"\x00" * len(d.face_photo)
        if ident is not None:
            REDACTOR.discard(getattr(ident, "name", None))
            wipe = getattr(ident, "wipe", None)
            if callable(wipe):
                wipe()
        d.form.clear()
        REDACTOR.clear()
        self._data = SessionData()

    # ------------------------------------------------------------- time
    def seconds_left(self) -> float | None:
        if self._state in NO_TIMEOUT:
            return None
        return max(0.0, self.idle_timeout_s - (self._clock() - self._last_activity))

    def tick(self) -> None:
        """Drive the idle timeout: warn once inside the warning window, then end."""
        with self._lock:
            left = self.seconds_left()
            if left is None:
                return
            warn = left <= self.idle_warning_s and not self._warned and left > 0
            if warn:
                self._warned = True
        if left <= 0:
            self.end("timeout")
        elif warn:
            self._emit("warning", left)

    def set_timeouts(self, idle_timeout_s: float, idle_warning_s: float) -> None:
        """Elderly mode lengthens the timeout; applies from the next activity."""
        if idle_warning_s >= idle_timeout_s:
            raise ValueError("idle warning must be shorter than the timeout")
        with self._lock:
            self.idle_timeout_s = idle_timeout_s
            self.idle_warning_s = idle_warning_s
