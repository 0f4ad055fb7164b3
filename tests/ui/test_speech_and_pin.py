"""Core pieces of the UI layer that need no window: speech backends and the technician PIN gate."""
from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import pytest

from kiosk.app.technician import PinGate
from kiosk.infra.speech import ClipSpeech, EspeakSpeech, NoSpeech, RecordingSpeech, make_speech


def _fake_player(tmp: Path) -> tuple[Path, Path]:
    """An executable that records its arguments (stands in for aplay / espeak-ng: no sound card here)."""
    log = tmp / "calls.txt"
    exe = tmp / "player"
    exe.write_text(f'#!/bin/sh\necho "$@" >> {log}\n', encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe, log


def _wait_for(path: Path) -> str:
    for _ in range(200):
        if path.exists() and path.read_text(encoding="utf-8").strip():
            return path.read_text(encoding="utf-8")
        time.sleep(0.01)
    return ""


def test_make_speech_honours_config():
    assert isinstance(make_speech("espeak-ng", enabled=False), NoSpeech)
    assert isinstance(make_speech("none"), NoSpeech)
    assert isinstance(make_speech("espeak-ng"), EspeakSpeech)
    assert isinstance(make_speech("clips", clip_dir="/nonexistent"), ClipSpeech)


def test_espeak_uses_the_mandarin_voice(tmp_path):
    exe, log = _fake_player(tmp_path)
    EspeakSpeech(executable=str(exe)).say("请刷身份证")
    assert _wait_for(log).split()[:2] == ["-v", "cmn"]


def test_clip_played_when_present_else_fallback(tmp_path):
    exe, log = _fake_player(tmp_path)
    (tmp_path / "welcome.wav").write_bytes(b"RIFF....WAVE")
    fallback = RecordingSpeech()
    sp = ClipSpeech(tmp_path, fallback=fallback, player=str(exe))
    sp.say("欢迎", key="welcome")
    assert "welcome.wav" in _wait_for(log)
    sp.say("没有录音的提示", key="missing")
    assert fallback.spoken == [("missing", "没有录音的提示")]


def test_interrupting_a_stubborn_player_never_waits_for_it(tmp_path):
    """say() runs on the Kivy thread: the old player is reaped in the background, never waited for."""
    exe = tmp_path / "stubborn"
    ready = tmp_path / "trapped"
    exe.write_text(f'#!/bin/sh\ntrap "" TERM\necho yes > {ready}\nsleep 30 & wait\nsleep 30\n', encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    sp = EspeakSpeech(executable=str(exe))
    sp.reap_grace_s = 60.0  # the old player ignores SIGTERM: only the reaper's kill ends it
    sp.say("第一句")
    first = sp._proc
    assert first is not None
    assert _wait_for(ready)  # the player ignores SIGTERM from here on
    sp.say("第二句")  # returns at once although the first player refuses to stop
    try:
        assert sp._proc is not first
        with pytest.raises(subprocess.TimeoutExpired):  # still there: nobody killed it while say() ran
            first.wait(timeout=0.5)
    finally:
        first.kill()
        sp.stop()
        sp._proc and sp._proc.kill()
    first.wait(timeout=10)


def test_missing_speech_program_is_not_fatal():
    EspeakSpeech(executable="/nonexistent/espeak-ng").say("你好")  # logs once, does not raise


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_pin_gate_locks_after_wrong_pins_and_reopens_after_the_lockout():
    c = Clock()
    g = PinGate("246810", attempts=3, lockout_s=600, clock=c)
    assert [g.check("1"), g.check("2")] == ["wrong", "wrong"] and g.attempts_left() == 1
    assert g.check("3") == "locked"
    assert g.check("246810") == "locked"
    c.t += 599
    assert g.check("246810") == "locked"
    c.t += 2
    assert g.check("246810") == "ok"
    assert g.check("000000") == "wrong" and g.attempts_left() == 2  # a success resets the count


def test_pin_gate_without_pin_is_disabled():
    assert PinGate("").check("") == "disabled"
