"""Helpers for the QR tests: generated QR frames, video files, a pty port, an event collector."""
from __future__ import annotations

import os
import tty

import numpy as np
from event_recorder import Events  # noqa: E402,F401


def qr_frame(text: str, size: tuple[int, int] = (640, 480), box: int = 6, at: tuple[int, int] = (40, 40),
             bgr: bool = True) -> np.ndarray:
    import qrcode
    q = qrcode.QRCode(box_size=box, border=4)
    q.add_data(text)
    q.make()
    code = np.array(q.make_image().convert("L"), dtype=np.uint8)
    w, h = size
    frame = np.full((h, w), 200, np.uint8)
    x, y = at
    frame[y:y + code.shape[0], x:x + code.shape[1]] = code
    if bgr:
        import cv2
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    return frame


def write_video(path: str, frames: list[np.ndarray], fps: float = 10.0) -> str:
    import cv2
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert vw.isOpened(), "OpenCV cannot write MJPG"
    for f in frames:
        vw.write(f)
    vw.release()
    return path


class PtyPort:
    """A pty whose slave is reachable at a stable symlink; the test writes as the scanner."""

    def __init__(self, link: str):
        self.link = link
        self.master = self.slave = None
        self.replug()

    def replug(self) -> None:
        self.unplug()
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.symlink(os.ttyname(self.slave), self.link)

    def unplug(self) -> None:
        if os.path.lexists(self.link):
            os.unlink(self.link)
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None

    def write(self, data: bytes) -> None:
        os.write(self.master, data)
