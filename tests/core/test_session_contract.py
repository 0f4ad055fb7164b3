"""The visit session's rules pinned down one by one (written to kill the mutants `make mutate` found)."""
from __future__ import annotations

import logging

import pytest

from kiosk.domain.redaction import REDACTOR
from kiosk.domain.session import (
    CapturedMaterial,
    InvalidTransition,
    MissingIdentity,
    Session,
    State,
    VisitEnded,
)


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def advance(self, s):
        self.t += s


class Card:
    def __init__(self, name="张三", id_number="11010519491231002X"):
        self.name, self.id_number, self.wiped = name, id_number, False

    def wipe(self):
        self.name = self.id_number = ""
        self.wiped = True


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def session(clock):
    return Session(idle_timeout_s=90, idle_warning_s=15, clock=clock)


def to_materials(s):
    s.identify(Card())
    s.choose_item("QHB-RS-001")
    s.start_form()
    s.set_form({"phone": "13812345678"})
    s.to_materials()


def test_the_warning_must_be_shorter_than_the_timeout(clock):
    for warning in (90, 91):
        with pytest.raises(ValueError, match="^idle warning must be shorter than the timeout$"):
            Session(idle_timeout_s=90, idle_warning_s=warning, clock=clock)
    s = Session(idle_timeout_s=90, idle_warning_s=89.5, clock=clock)
    for warning in (300, 301):
        with pytest.raises(ValueError, match="^idle warning must be shorter than the timeout$"):
            s.set_timeouts(300, warning)
    assert (s.idle_timeout_s, s.idle_warning_s) == (90, 89.5)  # a refused change changes nothing


def test_longer_timeouts_apply_from_the_next_activity(session, clock):
    session.identify(Card())
    session.set_timeouts(300, 60)
    assert (session.idle_timeout_s, session.idle_warning_s) == (300, 60)
    clock.advance(100)
    assert session.seconds_left() == 200
    warnings = []
    session.on("warning", warnings.append)
    clock.advance(141)  # 59 s left: inside the new 60 s window
    session.tick()
    assert warnings == [59] and session.state is State.IDENTIFIED


def test_visits_are_counted_once_each_when_they_leave_idle(session):
    assert session.visit_count == 0
    to_materials(session)
    assert session.visit_count == 1
    session.end()
    session.choose_item("QHB-RS-002")
    session.identify(Card())
    assert session.visit_count == 2


def test_listeners_hear_old_and_new_state_and_can_be_removed(session):
    heard, other = [], []
    cb = lambda old, new: heard.append((old, new))  # noqa: E731
    session.on("state", cb)
    session.on("state", lambda old, new: other.append(new))
    session.identify(Card())
    session.off("state", cb)
    session.choose_item("QHB-RS-001")
    assert heard == [(State.IDLE, State.IDENTIFIED)]
    assert other == [State.IDENTIFIED, State.ITEM_CHOSEN]


def test_a_broken_listener_is_logged_with_its_event_and_traceback(session, caplog):
    session.on("wipe", lambda reason: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="kiosk.domain.session"):
        session.end("timeout")
    [rec] = caplog.records
    assert rec.getMessage() == "session listener for wipe failed" and rec.exc_info[0] is ZeroDivisionError


def test_refusals_say_what_was_refused(session):
    with pytest.raises(InvalidTransition, match="^idle -> review is not allowed$"):
        session.to_review()
    with pytest.raises(MissingIdentity, match="^this item needs the citizen's identity first$"):
        session.choose_item("QHB-RS-001") or session.start_form()
    session.identify(Card())
    session.start_form()
    with pytest.raises(InvalidTransition, match="^cannot identify in state form$"):
        session.identify(Card())
    with pytest.raises(InvalidTransition, match="^cannot capture materials in state form$"):
        session.add_material("户口簿", b"x")
    session.to_materials()
    with pytest.raises(InvalidTransition, match="^cannot choose an item in state materials$"):
        session.choose_item("QHB-RS-002")
    with pytest.raises(InvalidTransition, match="^cannot fill the form in state materials$"):
        session.set_form({})
    with pytest.raises(InvalidTransition, match="^rating only after a completed case$"):
        session.rate("满意")
    session.to_review()
    session.begin_submit()
    with pytest.raises(InvalidTransition, match="^cannot keep a face photo in state submitting$"):
        session.set_face_photo(b"face")
    session.submitted("LQ261127ABCDEFGH1", queued=False)
    with pytest.raises(InvalidTransition, match="^done -> queued is not allowed$"):
        session.submitted("LQ261127ABCDEFGH1", queued=True)
    token = session.token
    session.end()
    with pytest.raises(VisitEnded, match="^the visit this result belongs to has ended$"):
        session.identify(Card(), token=token)


def test_with_visit_reads_under_the_current_token_only(session):
    token = session.token
    assert session.with_visit(token, lambda: "read") == "read"
    assert session.with_visit(None, lambda: 7) == 7
    session.end()
    with pytest.raises(VisitEnded):
        session.with_visit(token, lambda: "late")


def test_changing_the_item_on_the_guide_screen_keeps_the_new_one(session):
    session.choose_item("QHB-RS-001")
    session.choose_item("QHB-RS-002")
    assert session.data.item_code == "QHB-RS-002" and session.state is State.ITEM_CHOSEN


def test_materials_keep_their_name_and_type(session):
    to_materials(session)
    session.add_material("户口簿", b"\xff\xd8jpeg")
    session.add_material("证明.pdf", b"%PDF", mime="application/pdf")
    assert [(m.name, bytes(m.data), m.mime) for m in session.data.materials] == [
        ("户口簿", b"\xff\xd8jpeg", "image/jpeg"), ("证明.pdf", b"%PDF", "application/pdf")]


def test_identify_registers_every_given_name_for_redaction_even_without_a_card_name(session):
    class EId:  # a verified e-ID identity: no name attribute
        id_number = "11010519491231002X"

    session.identify(EId(), names=("欧阳娜娜", "娜娜"))
    assert "欧阳娜娜" not in REDACTOR.redact("欧阳娜娜来办事") and "娜娜" not in REDACTOR.redact("小娜娜")
    session.end()


def test_captured_material_wipe_empties_the_buffer_in_place():
    buf = bytearray(b"\xff\xd8secret page")
    m = CapturedMaterial("户口簿", buf)
    m.wipe()
    assert buf == bytearray() and m.data is buf


@pytest.mark.parametrize("slip", ["identity", "form", "materials", "face_photo", "item_code"])
def test_anything_found_in_an_idle_session_is_wiped_and_logged_before_the_next_visit(session, caplog, slip):
    d = session._data
    if slip == "identity":
        d.identity = Card()
    elif slip == "form":
        d.form["phone"] = "13912345678"
    elif slip == "materials":
        d.materials.append(CapturedMaterial("户口簿", bytearray(b"page")))
    elif slip == "face_photo":
        d.face_photo = bytearray(b"face")
    else:
        d.item_code = "QHB-RS-009"
    with caplog.at_level(logging.WARNING, logger="kiosk.domain.session"):
        session.choose_item("QHB-RS-001")
    assert [r.getMessage() for r in caplog.records] == [
        "personal data found in an idle session; wiped before the new visit"]
    assert session.data.identity is None and session.data.form == {} and session.data.materials == []
    assert session.data.face_photo is None and session.data.item_code == "QHB-RS-001"


def test_a_clean_idle_session_starts_without_a_warning(session, caplog):
    with caplog.at_level(logging.WARNING, logger="kiosk.domain.session"):
        session.choose_item("QHB-RS-001")
    assert caplog.records == []


def test_a_second_item_zeroes_the_first_cases_face_photo(session):
    session.identify(Card())
    session.choose_item("QHB-RS-001")
    session.set_face_photo(b"first case face")
    face = session.data.face_photo
    session.start_form()
    session.to_review()
    session.begin_submit()
    session.submitted("SD261127ABCDEFGH1", queued=False)
    session.choose_item("QHB-RS-002")
    assert face == bytearray(len(b"first case face")) and session.data.face_photo is None


def test_ending_tells_listeners_where_the_visit_was(session):
    heard = []
    session.on("state", lambda old, new: heard.append((old, new)))
    to_materials(session)
    session.back(State.FORM)
    heard.clear()
    session.end()
    assert heard == [(State.FORM, State.IDLE)]
    session.end()  # ending an idle screen is no state change
    assert heard == [(State.FORM, State.IDLE)]
