"""Spoken prompts for each step (适老化), behind a pluggable backend.

Backends: ``espeak-ng`` (offline Mandarin voice ``cmn``), ``clips`` (recorded
WAV files named after the prompt key, played with ``aplay``) and ``none``.
Speaking never blocks the UI and never raises: a kiosk without a sound card
still works, it only logs once that it cannot speak.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from pathlib import Path

from kiosk.ports.speech import SpeechBackend

__all__ = ["SpeechBackend", "NoSpeech", "EspeakSpeech", "ClipSpeech", "RecordingSpeech", "make_speech"]

log = logging.getLogger(__name__)


class NoSpeech:
    name = "none"

    def say(self, text: str, key: str | None = None) -> None:
        return None

    def stop(self) -> None:
        return None


def _reap(p: subprocess.Popen, grace_s: float) -> None:
    """Give a terminated player a moment to go, then kill it; always collect it (no zombies)."""
    try:
        p.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


class _ProcessSpeech:
    """Runs one player process at a time; a new prompt interrupts the previous one."""

    name = "process"
    reap_grace_s = 1.0  # how long an interrupted player may take to leave before it is killed

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._warned = False

    def _spawn(self, argv: list[str]) -> None:
        with self._lock:
            self._stop_locked()
            try:
                self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, start_new_session=True)
            except OSError as e:
                if not self._warned:
                    log.warning("speech backend %s unavailable: %s", self.name, e.__class__.__name__)
                    self._warned = True
                self._proc = None

    def _stop_locked(self) -> None:
        p, self._proc = self._proc, None
        if p is not None and p.poll() is None:
            p.terminate()
            # say() and stop() run on the Kivy thread: the old player is reaped elsewhere, never waited for here
            threading.Thread(target=_reap, args=(p, self.reap_grace_s), name="speech-reaper", daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()


class EspeakSpeech(_ProcessSpeech):
    """espeak-ng's Mandarin voice: robotic but offline and always there."""

    name = "espeak-ng"

    def __init__(self, voice: str = "cmn", speed_wpm: int = 140, executable: str | None = None,
                 amplitude: int = 100) -> None:
        super().__init__()
        self.voice = voice
        self.speed = speed_wpm
        self.amplitude = amplitude  # espeak-ng -a: 0..200, 100 its own default ([ui] voice_volume)
        self.executable = executable or shutil.which("espeak-ng") or "espeak-ng"

    def say(self, text: str, key: str | None = None) -> None:
        if text:
            self._spawn([self.executable, "-v", self.voice, "-s", str(self.speed), "-a", str(self.amplitude),
                         "--", text])


class ClipSpeech(_ProcessSpeech):
    """Recorded clips (<dir>/<key>.wav), falling back to another backend for prompts without a clip."""

    name = "clips"

    def __init__(self, clip_dir: str | Path, fallback: SpeechBackend | None = None,
                 player: str | None = None) -> None:
        super().__init__()
        self.clip_dir = Path(clip_dir)
        self.fallback = fallback or NoSpeech()
        self.player = player or shutil.which("aplay") or "aplay"

    def say(self, text: str, key: str | None = None) -> None:
        clip = self.clip_dir / f"{key}.wav" if key else None
        if clip is not None and clip.is_file():
            self.fallback.stop()
            self._spawn([self.player, "-q", str(clip)])
        else:
            self.fallback.say(text, key)


class RecordingSpeech:
    """Remembers what it was asked to say; for tests and for the technician's log."""

    name = "recording"

    def __init__(self) -> None:
        self.spoken: list[tuple[str | None, str]] = []
        self.stops = 0  # how often speaking was cut short (a reading stopped by a screen change)

    def say(self, text: str, key: str | None = None) -> None:
        self.spoken.append((key, text))

    def stop(self) -> None:
        self.stops += 1


def make_speech(backend: str, enabled: bool = True, clip_dir: str | Path | None = None, *,
                volume: int = 100, rate_wpm: int = 140) -> SpeechBackend:
    """The backend named in config (`[ui] voice_backend`), or silence when `[ui] voice = false`.

    ``volume`` and ``rate_wpm`` ([ui] voice_volume, voice_rate_wpm) set the synthetic voice; recorded
    clips play as recorded.
    """
    if not enabled or backend == "none":
        return NoSpeech()
    if backend == "espeak-ng":
        return EspeakSpeech(speed_wpm=rate_wpm, amplitude=volume)
    if backend == "clips":
        return ClipSpeech(clip_dir or "config/voice", fallback=EspeakSpeech(speed_wpm=rate_wpm, amplitude=volume))
    raise ValueError(f"unknown speech backend {backend!r}")
