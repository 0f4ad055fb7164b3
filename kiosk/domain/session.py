"""One citizen's visit as a state machine, free of Kivy and of wall-clock time.

The session is the only place personal data lives while a citizen is at the
terminal. Ending the visit (done, cancelled, or walked away) wipes it and tells
every listener to clear the screen, so nothing is left for the next person.

Each visit has a token (`Session.token`, a number that changes whenever a visit
ends). Background work (a capture, a look-up, a submission, a payment poll)
carries the token it was started under and hands it back with its result; a
result whose visit has ended is refused with `VisitEnded`, so it can never land
in the next citizen's visit. IDLE holds nothing personal: every write is refused
there, and leaving IDLE starts from empty data.
"""
from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kiosk.domain.redaction import REDACTOR

log = logging.getLogger(__name__)
T = TypeVar("T")


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
#: States in which a face photo may be taken (identify and certify; never IDLE or a finished case).
FACE_STATES = frozenset({S.IDENTIFIED, S.ITEM_CHOSEN, S.FORM, S.MATERIALS, S.REVIEW})


class InvalidTransition(RuntimeError):
    pass


class MissingIdentity(InvalidTransition):
    """The item needs the citizen identified before the form."""


class VisitEnded(RuntimeError):
    """A result of background work whose visit has ended: dropped, never written into the next visit."""


@dataclass
class CapturedMaterial:
    name: str
    data: bytearray  # bytearray so it can be zeroed on wipe
    mime: str = "image/jpeg"

    def wipe(self) -> None:
        self.data[:] = b"\x00" * len(self.data)
        self.data.clear()


@dataclass
class FetchedLicence:
    """An e-licence fetched instead of a photo (kiosk.app.licences): the reference the application
    carries, and what the screen shows (already masked). Lives in the visit only."""

    material: str
    licence_ref: str
    licence_type: str
    shown: dict[str, str] = field(default_factory=dict)


@dataclass
class SessionData:
    """Everything personal a visit holds. Only Session mutates it."""

    identity: Any = None  # an IdentityCard (devices) or a verified e-ID identity
    item_code: str | None = None
    form: dict[str, Any] = field(default_factory=dict)
    materials: list[CapturedMaterial] = field(default_factory=list)
    licences: list[FetchedLicence] = field(default_factory=list)
    face_photo: bytearray | None = None
    tracking_no: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    rating: str | None = None


Listener = Callable[..., object]


def _names_of(identity: Any) -> tuple[str | None, ...]:
    """The names an identity carries (a foreigner's card has an English one too): all redacted in logs."""
    return (getattr(identity, "name", None), getattr(identity, "english_name", None))


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
        self._token = 1

    # ------------------------------------------------------------- visit token
    @property
    def token(self) -> int:
        """The current visit's token; background work keeps it and hands it back with its result."""
        return self._token

    def is_current(self, token: int | None) -> bool:
        """Whether `token` is still the current visit's (None: the caller did not start background work)."""
        return token is None or token == self._token

    def _check_token_locked(self, token: int | None) -> None:
        if token is not None and token != self._token:
            raise VisitEnded("the visit this result belongs to has ended")

    def run_if_current(self, token: int | None, fn: Callable[[], Any]) -> bool:
        """Run `fn` while holding the session lock, only if `token`'s visit is still current.

        The check and the action are atomic against `end()`: a result either lands
        before the visit ends (and is wiped with it) or is dropped.
        """
        with self._lock:
            if not self.is_current(token):
                return False
            fn()
            return True

    def with_visit(self, token: int | None, fn: Callable[[], T]) -> T:
        """`fn()` under the session lock if `token`'s visit is current (a consistent read); else VisitEnded."""
        with self._lock:
            self._check_token_locked(token)
            return fn()

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
    def identify(self, identity: Any, names: tuple[str, ...] = (), token: int | None = None) -> None:
        """Attach the citizen's identity. `names` are registered for log redaction."""
        with self._lock:
            self._check_token_locked(token)
            state = self._state
            if state not in (State.IDLE, State.ITEM_CHOSEN, State.IDENTIFIED):
                raise InvalidTransition(f"cannot identify in state {state.value}")
            if state is State.IDLE:
                self._start_clean_locked()
            self._data.identity = identity
            REDACTOR.add(*names, *_names_of(identity))
            if state is State.IDLE:
                self._goto(State.IDENTIFIED)
            else:
                self._touch_locked()

    def choose_item(self, item_code: str, token: int | None = None) -> None:
        with self._lock:
            self._check_token_locked(token)
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
            elif state is State.IDLE:
                self._start_clean_locked()
            self._data.item_code = item_code
            self._goto(State.ITEM_CHOSEN)

    def start_form(self, requires_id: bool = True) -> None:
        if requires_id and self._data.identity is None:
            raise MissingIdentity("this item needs the citizen's identity first")
        self._goto(State.FORM)

    def set_form(self, values: dict[str, Any], token: int | None = None) -> None:
        with self._lock:
            self._check_token_locked(token)
            if self._state is not State.FORM:
                raise InvalidTransition(f"cannot fill the form in state {self._state.value}")
            self._data.form = dict(values)
            self._touch_locked()

    def to_materials(self) -> None:
        self._goto(State.MATERIALS)

    def add_material(self, name: str, data: bytes, mime: str = "image/jpeg", token: int | None = None) -> None:
        with self._lock:
            self._check_token_locked(token)
            if self._state is not State.MATERIALS:
                raise InvalidTransition(f"cannot capture materials in state {self._state.value}")
            self._data.materials.append(CapturedMaterial(name, bytearray(data), mime))
            self._touch_locked()

    def add_licence(self, licence: FetchedLicence, token: int | None = None) -> None:
        """Keep a fetched e-licence for its material (replacing an earlier one for the same material)."""
        with self._lock:
            self._check_token_locked(token)
            if self._state is not State.MATERIALS:
                raise InvalidTransition(f"cannot take an e-licence in state {self._state.value}")
            self._data.licences = [x for x in self._data.licences if x.material != licence.material] + [licence]
            self._touch_locked()

    def drop_licence(self, material: str) -> None:
        with self._lock:
            self._data.licences = [x for x in self._data.licences if x.material != material]

    def set_face_photo(self, data: bytes, token: int | None = None) -> None:
        with self._lock:
            self._check_token_locked(token)
            if self._state not in FACE_STATES:
                raise InvalidTransition(f"cannot keep a face photo in state {self._state.value}")
            if self._data.face_photo is not None:  # a retake: the first photo does not linger
                self._data.face_photo[:] = b"\x00" * len(self._data.face_photo)
            self._data.face_photo = bytearray(data)
            self._touch_locked()

    def to_review(self) -> None:
        self._goto(State.REVIEW)

    def back(self, to: State) -> None:
        self._goto(to)

    def begin_submit(self) -> None:
        self._goto(State.SUBMITTING)

    def submitted(self, tracking_no: str, queued: bool, result: dict[str, Any] | None = None,
                  token: int | None = None) -> None:
        with self._lock:
            self._check_token_locked(token)
            new = State.QUEUED if queued else State.DONE
            if new not in TRANSITIONS[self._state]:
                raise InvalidTransition(f"{self._state.value} -> {new.value} is not allowed")
            self._data.tracking_no = tracking_no
            self._data.result = dict(result or {})
            self._goto(new)

    def submit_failed(self, token: int | None = None) -> None:
        """A permanent refusal: back to review so the citizen can correct or ask for help."""
        with self._lock:
            self._check_token_locked(token)
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
            self._token += 1  # results of the ended visit's background work are refused from now on
            self._touch_locked()
        if old is not State.IDLE:
            self._emit("state", old, State.IDLE)
        self._emit("wipe", reason)

    def _start_clean_locked(self) -> None:
        """Leaving IDLE: the new visit starts from empty data (IDLE never holds any; this makes sure)."""
        d = self._data
        if d.identity is not None or d.form or d.materials or d.licences or d.face_photo is not None or d.item_code:
            log.warning("personal data found in an idle session; wiped before the new visit")
            self._wipe_locked()
        self._data = SessionData()

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
            REDACTOR.discard(*_names_of(ident))
            wipe = getattr(ident, "wipe", None)
            if callable(wipe):
                wipe()
        d.form.clear()
        d.licences.clear()
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
