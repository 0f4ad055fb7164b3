"""A GA 467 SAM module emulator: answers real frames like a module with a card on it.

Used by the simulated reader (in process, through :meth:`SamEmulator.handle`) and by
tests and the demo over a pseudo-terminal (:meth:`SamEmulator.serve_fd` on a
thread or :class:`PtyServer`). Faults a cheap module shows in the field are
switchable: noise bytes, answers split across writes, corrupted checksums, slow
answers, SAM self-test failure, read failure, silence.
"""
from __future__ import annotations

import os
import random
import select
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass

from devices.idcard.ga467 import Command, FrameDecoder, GA467Frame
from devices.idcard.known_answer import read_response_frame, sample_card, sample_id_number
from devices.idcard.text_block import encode_text_block
from kiosk.domain.identity_card import IdentityCard

REQUESTS_KEPT = 10_000

__all__ = ["SamEmulator", "Faults", "sample_card", "sample_id_number", "read_response_frame"]


@dataclass
class Faults:
    noise: bytes = b""  # sent before each answer
    split_every: int = 0  # write answers in chunks of this many bytes (0: one write)
    split_pause_s: float = 0.0
    corrupt_next: int = 0  # corrupt the checksum of the next N answers
    delay_s: float = 0.0  # before each answer
    silent: bool = False  # answer nothing
    self_test_fails: bool = False
    read_fails: int = 0  # next N reads answer 41


class SamEmulator:
    """State of one module: the card on it (text block + photo) and the faults to show."""

    def __init__(self, card: IdentityCard | None = None, *, text_block: bytes | None = None,
                 fingerprint: bytes = b""):
        self._lock = threading.Lock()
        self.faults = Faults()
        # the latest requests, for tests: bounded, as the reader polls all day in a soak or a development kiosk
        self.requests: deque[tuple[int, int]] = deque(maxlen=REQUESTS_KEPT)
        self._text: bytes | None = None
        self._photo = b""
        self._fp = fingerprint
        self.selected = False
        if card is not None or text_block is not None:
            self.put_card(card, text_block=text_block, fingerprint=fingerprint)
        self._stop = threading.Event()

    # -- the card ----------------------------------------------------------
    def put_card(self, card: IdentityCard | None = None, *, text_block: bytes | None = None,
                 photo: bytes | None = None, fingerprint: bytes = b"") -> None:
        with self._lock:
            self._text = text_block if text_block is not None else encode_text_block(card)  # type: ignore[arg-type]
            self._photo = photo if photo is not None else (card.photo_wlt if card else b"\x00" * 1024)
            self._fp = fingerprint
            self.selected = False

    def remove_card(self) -> None:
        with self._lock:
            self._text = None
            self.selected = False

    @property
    def has_card(self) -> bool:
        return self._text is not None

    # -- protocol ------------------------------------------------------------
    def answer(self, req: GA467Frame) -> GA467Frame | None:
        """The module's answer to one request (None: no answer)."""
        with self._lock:
            cmd = req.cmd
            self.requests.append(cmd)
            if self.faults.silent:
                return None
            if cmd == Command.SAM_STATUS:
                return GA467Frame.response(0x60 if self.faults.self_test_fails else 0x90)
            if cmd == Command.RESET_SAM:
                return GA467Frame.response(0x90)
            if cmd == Command.FIND_CARD:
                if self._text is None:
                    return GA467Frame.response(0x80)
                return GA467Frame.response(0x9F, b"\x00\x00\x00\x00")
            if cmd == Command.SELECT_CARD:
                if self._text is None:
                    return GA467Frame.response(0x81)
                self.selected = True
                return GA467Frame.response(0x90, b"\x00" * 8)
            if cmd in (Command.READ_BASE, Command.READ_BASE_FP):
                if self._text is None or not self.selected:
                    return GA467Frame.response(0x41)
                if self.faults.read_fails:
                    self.faults.read_fails -= 1
                    return GA467Frame.response(0x41)
                fp = self._fp if cmd == Command.READ_BASE_FP else None
                return read_response_frame(self._text, self._photo, fp)
            return GA467Frame.response(0x21)

    def handle(self, raw_request: bytes) -> bytes:
        """Bytes on the wire for one raw request, faults applied (except timing)."""
        frames = FrameDecoder().feed(raw_request)
        if not frames:
            return GA467Frame.response(0x10).encode()  # checksum error, like a module
        ans = self.answer(frames[0])
        if ans is None:
            return b""
        wire = bytearray(ans.encode())
        with self._lock:
            if self.faults.corrupt_next:
                self.faults.corrupt_next -= 1
                wire[-1] ^= 0x5A
            noise = self.faults.noise
        return noise + bytes(wire)

    # -- serving a file descriptor (pty master) -----------------------------------------
    def serve_fd(self, fd: int, stop: threading.Event | None = None) -> None:
        """Answer requests arriving on `fd` until stop is set or the fd closes."""
        stop = stop or self._stop
        dec = FrameDecoder()
        while not stop.is_set():
            try:
                r, _, _ = select.select([fd], [], [], 0.05)
                if not r:
                    continue
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            for req in dec.feed(chunk):
                wire = self.handle(req.encode())
                if not wire:
                    continue
                if self.faults.delay_s and stop.wait(self.faults.delay_s):
                    return
                step = self.faults.split_every or len(wire)
                try:
                    for i in range(0, len(wire), step):
                        os.write(fd, wire[i:i + step])
                        if self.faults.split_every and self.faults.split_pause_s:
                            time.sleep(self.faults.split_pause_s)
                except OSError:
                    return

    def start_thread(self, fd: int) -> threading.Thread:
        self._stop.clear()
        t = threading.Thread(target=self.serve_fd, args=(fd, self._stop), name="sam-emulator", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()


def random_noise(n: int, seed: int = 0) -> bytes:
    """Noise that never contains the preamble's first byte (so it cannot fake a frame start)."""
    rng = random.Random(seed)
    return bytes(rng.choice([b for b in range(256) if b != 0xAA]) for _ in range(n))


class PtyServer:
    """The emulator behind a pseudo-terminal whose slave is reachable at a stable symlink.

    ``unplug()`` closes the pty and removes the link (a vanished USB-serial port);
    ``replug()`` makes a fresh pty at the same path, as udev would.
    """

    def __init__(self, emulator: SamEmulator, link_path: str):
        self.emulator = emulator
        self.link_path = link_path
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self.replug()

    def replug(self) -> None:
        self.unplug()
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation: bytes are bytes
        self._master, self._slave = master, slave
        if os.path.lexists(self.link_path):
            os.unlink(self.link_path)
        os.symlink(os.ttyname(slave), self.link_path)
        self.emulator._stop = threading.Event()
        self._thread = self.emulator.start_thread(master)

    def unplug(self) -> None:
        self.emulator.stop()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if os.path.lexists(self.link_path):
            os.unlink(self.link_path)
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None

    close = unplug
