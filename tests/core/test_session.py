"""The visit state machine with a fake clock: transitions, timeouts, and the wipe."""
from dataclasses import dataclass

import pytest

from kiosk.domain.redaction import REDACTOR
from kiosk.domain.session import FetchedLicence, InvalidTransition, MissingIdentity, Session, State, VisitEnded


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def advance(self, s):
        self.t += s


@dataclass
class Card:
    name: str
    id_number: str
    wiped: bool = False

    def wipe(self):
        self.name = ""
        self.id_number = ""
        self.wiped = True


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def session(clock):
    return Session(idle_timeout_s=90, idle_warning_s=15, clock=clock)


def full_visit_to_review(s):
    s.identify(Card("张三", "11010519491231002X"))
    s.choose_item("QHB-RS-001")
    s.start_form()
    s.set_form({"phone": "13812345678"})
    s.to_materials()
    s.add_material("户口簿", b"\xff\xd8jpegdata")
    s.add_licence(FetchedLicence("结婚证", "ELZB0000000103", "marriage_certificate", {"holder": "张*"}))
    s.to_review()


def test_happy_path_states(session):
    seen = []
    session.on("state", lambda old, new: seen.append(new))
    full_visit_to_review(session)
    session.begin_submit()
    session.submitted("LQ261127ABCDEFGH1", queued=True)
    session.start_rating()
    session.rate("满意")
    session.end()
    assert seen == [State.IDENTIFIED, State.ITEM_CHOSEN, State.FORM, State.MATERIALS, State.REVIEW,
                    State.SUBMITTING, State.QUEUED, State.RATING, State.IDLE]


def test_item_first_then_identify(session):
    session.choose_item("QHB-RS-001")
    with pytest.raises(MissingIdentity):
        session.start_form()
    session.identify(Card("李四", "34052419800101001X"))
    assert session.state is State.ITEM_CHOSEN
    session.start_form()
    assert session.state is State.FORM


@pytest.mark.parametrize("action", [
    lambda s: s.to_review(),
    lambda s: s.begin_submit(),
    lambda s: s.start_rating(),
    lambda s: s.set_form({}),
    lambda s: s.add_material("x", b"1"),
    lambda s: s.rate("满意"),
    lambda s: s.set_face_photo(b"face"),
    lambda s: s.submitted("LQ261127ABCDEFGH1", queued=True),
    lambda s: s.submit_failed(),
])
def test_invalid_transitions_raise(session, action):
    """IDLE refuses every write: nothing personal can be held in it."""
    with pytest.raises(InvalidTransition):
        action(session)
    assert session.state is State.IDLE
    d = session.data
    assert d.face_photo is None and d.tracking_no is None and d.materials == [] and d.form == {}


def test_each_visit_has_its_own_token(session):
    first = session.token
    session.choose_item("QHB-RS-001")
    assert session.token == first  # the same visit
    session.end("finished")
    second = session.token
    assert second != first and session.is_current(second) and not session.is_current(first)
    session.end("home")  # ending an idle screen also retires whatever work it started
    assert session.token != second


@pytest.mark.parametrize("late", [
    lambda s, t: s.identify(Card("王五", "11010519491231002X"), token=t),
    lambda s, t: s.add_material("申请表", b"\xff\xd8late", token=t),
    lambda s, t: s.set_face_photo(b"late face", token=t),
    lambda s, t: s.submitted("LQ261127ABCDEFGH1", queued=True, token=t),
    lambda s, t: s.submit_failed(token=t),
    lambda s, t: s.set_form({"phone": "13800000000"}, token=t),
    lambda s, t: s.choose_item("QHB-RS-002", token=t),
], ids=["identify", "material", "face", "submitted", "submit_failed", "form", "choose_item"])
def test_a_result_of_an_ended_visit_never_lands_in_the_next(session, late):
    """Work started in visit 1 finishes while visit 2 is in the very state it would write into."""
    full_visit_to_review(session)
    token = session.token
    session.end("timeout")
    session.identify(Card("李四", "34052419800101001X"))  # the next citizen
    session.choose_item("QHB-RS-001")
    session.start_form()
    session.set_form({"phone": "13912345678"})
    session.to_materials()
    before = (session.state, dict(session.data.form), len(session.data.materials), session.data.face_photo,
              session.data.identity.name, session.data.item_code)
    with pytest.raises(VisitEnded):
        late(session, token)
    after = (session.state, dict(session.data.form), len(session.data.materials), session.data.face_photo,
             session.data.identity.name, session.data.item_code)
    assert after == before


def test_run_if_current_is_atomic_with_the_end_of_the_visit(session):
    ran = []
    token = session.token
    assert session.run_if_current(token, lambda: ran.append(1))
    session.end("finished")
    assert not session.run_if_current(token, lambda: ran.append(2))
    assert ran == [1]
    assert session.run_if_current(None, lambda: ran.append(3))  # work not tied to a visit


def test_leaving_idle_starts_clean(session):
    session._data.form["phone"] = "13912345678"  # whatever might have slipped in while idle
    session._data.face_photo = bytearray(b"stale")
    session.choose_item("QHB-RS-001")
    assert session.data.form == {} and session.data.face_photo is None
    assert session.data.item_code == "QHB-RS-001"
    session.end()
    session._data.materials.append(object())  # type: ignore[arg-type]
    session._data.materials.clear()
    session._data.item_code = "QHB-RS-009"
    session.identify(Card("张三", "11010519491231002X"))
    assert session.data.item_code is None and session.state is State.IDENTIFIED


def test_face_retake_zeroes_the_first_photo(session):
    session.identify(Card("张三", "11010519491231002X"))
    session.set_face_photo(b"first")
    first = session.data.face_photo
    session.set_face_photo(b"second")
    assert set(first) <= {0} and bytes(session.data.face_photo) == b"second"


def test_timeout_warns_then_wipes_everything(session, clock):
    card = Card("张三", "11010519491231002X")
    warnings, wipes = [], []
    session.on("warning", warnings.append)
    session.on("wipe", wipes.append)
    full_visit_to_review(session)
    material = session.data.materials[0]
    licences = session.data.licences
    assert [x.licence_ref for x in licences] == ["ELZB0000000103"]
    session.set_face_photo(b"face")
    face = session.data.face_photo
    session._data.identity = card  # keep a handle to see the wipe reach the object

    clock.advance(74)
    session.tick()
    assert warnings == [] and session.state is State.REVIEW
    clock.advance(2)  # 76 s: inside the 15 s warning window
    session.tick()
    session.tick()
    assert len(warnings) == 1 and 0 < warnings[0] <= 15
    clock.advance(14)
    session.tick()
    assert session.state is State.IDLE
    assert wipes == ["timeout"]
    assert card.wiped and card.name == ""
    assert session.data.identity is None and session.data.form == {} and session.data.materials == []
    assert session.data.licences == [] and licences == []  # nothing of a fetched e-licence outlives the visit
    assert bytes(material.data) == b"" and set(face) <= {0}


def test_activity_resets_countdown(session, clock):
    session.identify(Card("张三", "11010519491231002X"))
    clock.advance(80)
    session.touch()
    clock.advance(80)
    session.tick()
    assert session.state is State.IDENTIFIED
    clock.advance(11)
    session.tick()
    assert session.state is State.IDLE


def test_no_timeout_while_submitting(session, clock):
    full_visit_to_review(session)
    session.begin_submit()
    clock.advance(1000)
    session.tick()
    assert session.state is State.SUBMITTING


def test_end_wipes_names_from_the_registry_but_keeps_redacting_them(session):
    session.identify(Card("欧阳娜娜", "11010519491231002X"))
    assert "欧阳娜娜" not in REDACTOR.redact("欧阳娜娜来了")
    wipes = []
    session.on("wipe", wipes.append)
    session.end()
    assert wipes == ["finished"]
    # A line logged after the wipe still never carries the name; the redactor holds only its hash.
    assert REDACTOR.redact("欧阳娜娜来了") == "[redacted]来了"
    assert not any("欧阳娜娜" in str(v) for v in vars(REDACTOR).values())
    REDACTOR.forget_wiped()
    assert REDACTOR.redact("欧阳娜娜来了") == "欧阳娜娜来了"


def test_second_item_in_same_visit_keeps_identity_drops_case(session):
    full_visit_to_review(session)
    session.begin_submit()
    session.submitted("SD261127ABCDEFGH1", queued=False)
    session.choose_item("QHB-RS-002")
    assert session.data.identity is not None
    assert session.data.form == {} and session.data.materials == [] and session.data.tracking_no is None


def test_broken_listener_does_not_break_visit(session):
    session.on("state", lambda o, n: 1 / 0)
    session.identify(Card("张三", "11010519491231002X"))
    assert session.state is State.IDENTIFIED


def test_identify_registers_the_cards_own_name_for_redaction(session):
    session.identify(Card("司马相如", "11010519491231002X"), names=("长卿",))
    assert "司马相如" not in REDACTOR.redact("司马相如来了") and "长卿" not in REDACTOR.redact("长卿来了")
    session.end()


def test_the_case_number_result_and_rating_are_kept_for_the_visit(session):
    full_visit_to_review(session)
    session.begin_submit()
    session.submitted("SD261127ABCDEFGH1", queued=False, result={"status": "accepted"})
    assert session.data.tracking_no == "SD261127ABCDEFGH1" and session.data.result == {"status": "accepted"}
    session.start_rating()
    session.rate("满意")
    assert session.data.rating == "满意"


def test_the_warning_starts_at_the_edge_of_its_window(session, clock):
    warnings = []
    session.on("warning", warnings.append)
    session.identify(Card("张三", "11010519491231002X"))
    clock.advance(75)  # exactly 15 s left: the window includes its edge
    session.tick()
    assert warnings == [15.0] and session.state is State.IDENTIFIED


def test_the_last_second_still_warns_and_the_visit_ends_only_at_zero(session, clock):
    warnings = []
    session.on("warning", warnings.append)
    session.identify(Card("张三", "11010519491231002X"))
    clock.advance(89.5)  # the first tick of the window comes half a second before the end
    session.tick()
    assert warnings == [0.5] and session.state is State.IDENTIFIED
    clock.advance(0.5)
    session.tick()
    assert session.state is State.IDLE


def _to_materials(s):
    s.identify(Card("张三", "11010519491231002X"))
    s.choose_item("QHB-RS-001")
    s.start_form()
    s.to_materials()


def test_one_fetched_licence_per_material_the_latest_wins_and_drop_takes_only_its_own(session):
    _to_materials(session)
    first = FetchedLicence("结婚证", "ELZB0000000103", "marriage_certificate")
    other = FetchedLicence("户口簿", "ELHK0000000207", "household_register")
    again = FetchedLicence("结婚证", "ELZB0000000301", "marriage_certificate")
    session.add_licence(first)
    session.add_licence(other)
    session.add_licence(again)
    assert [x.licence_ref for x in session.data.licences] == ["ELHK0000000207", "ELZB0000000301"]
    session.drop_licence("结婚证")
    assert [x.licence_ref for x in session.data.licences] == ["ELHK0000000207"]


def test_a_licence_fetched_for_an_ended_visit_or_outside_materials_is_refused(session):
    _to_materials(session)
    token = session.token
    session.to_review()
    with pytest.raises(InvalidTransition, match="^cannot take an e-licence in state review$"):
        session.add_licence(FetchedLicence("结婚证", "ELZB0000000103", "marriage_certificate"), token=token)
    session.end()
    _to_materials(session)
    with pytest.raises(VisitEnded):
        session.add_licence(FetchedLicence("结婚证", "ELZB0000000103", "marriage_certificate"), token=token)
    assert session.data.licences == []


def test_a_foreigners_english_name_is_redacted_and_stays_redacted_after_the_wipe(session):
    card = Card("欧阳娜娜", "11010519491231002X")
    card.english_name = "ANNA OUYANG"  # a foreigner's permanent residence card carries both
    session.identify(card)
    assert REDACTOR.redact("hello ANNA OUYANG") == "hello [redacted]"
    session.end()
    assert REDACTOR.redact("hello ANNA OUYANG") == "hello [redacted]"
    REDACTOR.forget_wiped()
