"""A thermal receipt printer you can run anywhere: a 9100-style TCP (or serial) ESC/POS peer.

It parses the stream, answers ``DLE EOT n`` with a status you set (paper out,
cover open...), and renders every cut receipt to a PNG. While the status is a
fault it prints nothing, like a real printer that stopped; ``paper_lines_left``
makes the paper run out in the middle of a receipt (the torn receipt is kept as
incomplete and gets no PNG). Used by tests, ``--simulate``, the demo and the
simulated printer driver.
"""
from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from devices.printer.status import NAMED_CONDITIONS, PrinterCondition, encode_status
from standins.escpos_parser import Cut, EscPosParser, Feed, Newline, Op, QrPrint, StatusQuery, Text, Unknown
from standins.printer_render import render_ops

log = logging.getLogger(__name__)

__all__ = ["EmulatedReceipt", "PrinterEmulator"]


@dataclass
class EmulatedReceipt:
    index: int
    ops: list[Op] = field(default_factory=list)
    complete: bool = True
    png: Path | None = None

    def text(self) -> str:
        """The printed text, lines joined by newlines (for assertions and logs in tests)."""
        parts: list[str] = []
        for op in self.ops:
            if isinstance(op, Text):
                parts.append(op.text)
            elif isinstance(op, Newline):
                parts.append("\n")
        return "".join(parts)

    def qr_data(self) -> list[str]:
        return [op.data for op in self.ops if isinstance(op, QrPrint)]


class PrinterEmulator:
    """Thread-safe emulator core plus an optional TCP listener (``start``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9100, out_dir: str | os.PathLike[str] | None = None,
                 status: str | PrinterCondition = "ok", paper_mm: int = 58, chinese_default: bool = False):
        self.host, self.port = host, port
        self.out_dir = Path(out_dir) if out_dir else None
        self.paper_mm = paper_mm
        self.chinese_default = chinese_default
        self._cond = NAMED_CONDITIONS[status] if isinstance(status, str) else status
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.receipts: list[EmulatedReceipt] = []
        self._current = EmulatedReceipt(0)
        self.paper_lines_left: int | None = None
        self.status_queries = 0
        self.unknown_ops = 0
        self.connections = 0
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()

    # -- status --------------------------------------------------------------
    @property
    def condition(self) -> PrinterCondition:
        return self._cond

    def set_status(self, status: str | PrinterCondition) -> None:
        with self._lock:
            self._cond = NAMED_CONDITIONS[status] if isinstance(status, str) else status

    # -- the byte stream -------------------------------------------------------
    def new_stream(self) -> EscPosParser:
        return EscPosParser(chinese_mode=self.chinese_default)

    def handle(self, parser: EscPosParser, data: bytes) -> bytes:
        """Feed bytes from one connection; returns the bytes to answer (status replies)."""
        return self._apply(parser.feed(data))

    def end_stream(self, parser: EscPosParser) -> None:
        self._apply(parser.flush())

    def _apply(self, ops: list[Op]) -> bytes:
        reply = bytearray()
        with self._lock:
            for op in ops:
                if isinstance(op, StatusQuery):
                    self.status_queries += 1
                    reply.append(encode_status(self._cond, op.n))
                    continue
                if isinstance(op, Unknown):
                    self.unknown_ops += 1
                    continue
                if isinstance(op, Cut):
                    self._finish_receipt()
                    continue
                if self._cond.fault:  # a stopped printer prints nothing
                    if self._current.ops:
                        self._current.complete = False
                    continue
                self._current.ops.append(op)
                if isinstance(op, (Newline, Feed)) and self.paper_lines_left is not None:
                    self.paper_lines_left -= 1
                    if self.paper_lines_left <= 0:
                        self._cond = NAMED_CONDITIONS["paper-out"]
                        self._current.complete = False
                        self.paper_lines_left = None
        return bytes(reply)

    def _finish_receipt(self) -> None:
        rec = self._current
        if self._cond.fault and not rec.ops:
            return  # a cut the stopped printer could not perform
        if self._cond.fault:
            rec.complete = False
        self._current = EmulatedReceipt(len(self.receipts) + 1)
        rec.index = len(self.receipts)
        self.receipts.append(rec)
        if rec.complete and self.out_dir is not None:
            rec.png = self._write_png(rec)
        self._changed.notify_all()

    def _write_png(self, rec: EmulatedReceipt) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        n = rec.index + 1
        while (path := self.out_dir / f"receipt-{n:04d}.png").exists():  # type: ignore[operator]
            n += 1  # a restarted emulator never overwrites earlier receipts
        tmp = path.with_suffix(".tmp")
        render_ops(rec.ops, self.paper_mm).save(tmp, format="PNG")
        os.replace(tmp, path)  # readers never see half a file
        return path

    @property
    def complete_receipts(self) -> list[EmulatedReceipt]:
        with self._lock:
            return [r for r in self.receipts if r.complete]

    def wait_for_receipts(self, n: int, timeout: float = 10.0, complete_only: bool = True) -> bool:
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                have = len(self.complete_receipts if complete_only else self.receipts)
                if have >= n:
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)

    # -- TCP -----------------------------------------------------------------------
    def start(self) -> PrinterEmulator:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(4)
        s.settimeout(0.2)
        self.port = s.getsockname()[1]
        self._sock = s
        self._stop.clear()
        t = threading.Thread(target=self._accept_loop, name="escpos-emulator", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), name="escpos-conn", daemon=True)
            t.start()
            self._threads = [th for th in self._threads if th.is_alive()] + [t]  # one per print: keep the live ones
            self.connections += 1  # last: whoever waits for the count sees the pruned list

    def _serve(self, conn: socket.socket) -> None:
        parser = self.new_stream()
        conn.settimeout(0.2)
        with self._lock:
            self._conns.add(conn)
        try:
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                reply = self.handle(parser, data)
                if reply:
                    try:
                        conn.sendall(reply)
                    except OSError:
                        break
        finally:
            self.end_stream(parser)
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def serve_fd(self, fd: int) -> threading.Thread:
        """Serve a serial line (e.g. the master side of a pty) until stop()."""
        def loop() -> None:
            parser = self.new_stream()
            while not self._stop.is_set():
                r, _, _ = select.select([fd], [], [], 0.1)
                if not r:
                    continue
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                reply = self.handle(parser, data)
                if reply:
                    os.write(fd, reply)
            self.end_stream(parser)

        t = threading.Thread(target=loop, name="escpos-serial-emulator", daemon=True)
        t.start()
        self._threads.append(t)
        return t

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self._threads.clear()

    def __enter__(self) -> PrinterEmulator:
        return self.start() if self._sock is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
