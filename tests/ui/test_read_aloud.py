"""「朗读」 (issue 14 item 5): in elderly mode every screen reads its title, main text and choices aloud."""
from __future__ import annotations

import pytest
from test_accessibility import SCREENS, prepare

from kiosk.app.read_aloud import READ_ALOUD_KEY, reading_text
from screens.read_aloud import screen_reading

pytestmark = pytest.mark.ui


def _read(app, drv, svc) -> str:
    svc.ctx.speech.spoken.clear()
    drv.tap("nav-read")
    said = [text for key, text in svc.ctx.speech.spoken if key == READ_ALOUD_KEY]
    assert len(said) == 1, svc.ctx.speech.spoken
    return said[0]


def test_every_screen_reads_its_title_text_and_choices(kiosk):
    app, drv, svc = kiosk
    if not svc.mode.elderly:
        app.toggle_elderly()
    try:
        readings = {}
        for name in SCREENS:
            prepare(app, drv, svc, name)
            assert app.current == name
            r = screen_reading(app.screen(name))
            said = _read(app, drv, svc)
            assert said == reading_text(r.title, r.text, r.choices)
            assert r.title or r.text, f"{name} reads nothing"
            assert r.choices, f"{name} offers no choice to read"
            assert "朗读" not in said and "长辈版" not in said  # the nav bar is not the screen's
            readings[name] = said
        guide = svc.ctx.catalog.get("QHB-RS-027")
        assert readings["guide"].startswith(guide.title + "。")
        assert "需要的材料" in readings["guide"] and "您可以选：打印告知单、开始办理。" in readings["guide"]
        assert "拍照" in readings["materials"] and "没带这份材料" in readings["materials"]
        assert any(level in readings["rating"] for level in ("非常满意", "满意"))
        from standins.sam_emulator import sample_card
        card = sample_card()
        assert all(card.id_number not in s and card.name not in s for s in readings.values())  # masked only
    finally:
        if svc.mode.elderly:
            app.toggle_elderly()
        svc.visit.end_visit("done")
        drv.pump(0.2)


def test_reading_stops_when_the_screen_changes_and_is_offered_in_elderly_mode_only(kiosk):
    app, drv, svc = kiosk
    if svc.mode.elderly:
        app.toggle_elderly()
    app.go("guide", code="QHB-RS-027")
    drv.pump(0.2)
    assert not drv.has("nav-read")  # standard mode: no 朗读 button
    assert svc.reading.read("标题", ["正文"], ["选项"]) == ""
    app.toggle_elderly()
    try:
        drv.pump(0.2)
        _read(app, drv, svc)
        stops = svc.ctx.speech.stops
        app.go("home")
        drv.pump(0.1)
        assert svc.ctx.speech.stops == stops + 1  # the reading was cut when the screen changed
        app.go("search")
        drv.pump(0.1)
        assert svc.ctx.speech.stops == stops + 1  # nothing being read: the new screen's prompt is not cut
    finally:
        app.toggle_elderly()
        svc.visit.end_visit("done")
        drv.pump(0.2)


def test_reading_text_is_title_text_then_choices():
    assert reading_text("就业困难人员认定", ["•已经办了失业登记", "不收费"], ["打印告知单", "开始办理"]) == (
        "就业困难人员认定。已经办了失业登记。不收费。您可以选：打印告知单、开始办理。")


def test_voice_volume_and_rate_come_from_configuration(tmp_path):
    from test_speech_and_pin import _fake_player, _wait_for

    from kiosk.config import UISection
    from kiosk.fleet.pushable import is_pushable
    from kiosk.infra.speech import make_speech

    ui = UISection(idle_timeout_s=90, idle_warning_s=15, voice_volume=160, voice_rate_wpm=110)
    sp = make_speech("espeak-ng", volume=ui.voice_volume, rate_wpm=ui.voice_rate_wpm)
    exe, log = _fake_player(tmp_path)
    sp.executable = str(exe)
    sp.say("请刷身份证")
    args = _wait_for(log).split()
    assert args[args.index("-s") + 1] == "110" and args[args.index("-a") + 1] == "160"
    with pytest.raises(ValueError):
        UISection(idle_timeout_s=90, idle_warning_s=15, voice_volume=201)
    assert is_pushable("ui.voice_volume") and is_pushable("ui.voice_rate_wpm")
