"""Virtual smart cards for vsmartcard's vpcd reader driver, in plain Python.

pcscd with ``vsmartcard-vpcd`` exposes "Virtual PCD 00 00" and waits for a card
on TCP 35963. A card connects as a client and speaks: 2-byte big-endian length +
payload; a 1-byte payload is a control code (0 power off, 1 power on, 2 reset,
4 ask for the ATR, answered with the ATR), anything longer is a command APDU
answered with the response APDU. Connecting is inserting the card, closing the
socket is removing it.

:class:`SocialSecurityCardApp` plays a 社会保障卡 (third generation layout as far
as public sources describe it): application select by name, EF05/EF06 with
TLV records read by tag, and EF06 protected by a PSAM when configured so.
"""
from __future__ import annotations

import socket
import struct
import threading

from devices.idcard.known_answer import sample_id_number
from devices.idcard.sscard import SSC_AID

__all__ = ["VirtualCard", "SocialSecurityCardApp", "SSC_AID", "VPCD_PORT", "sample_sscard_records"]

VPCD_PORT = 35963

SW_OK = b"\x90\x00"


class VirtualCard:
    """A card on the vpcd socket. Subclasses implement :meth:`apdu`."""

    atr = bytes.fromhex("3B6C0000")

    def __init__(self, host: str = "127.0.0.1", port: int = VPCD_PORT):
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.apdus: list[bytes] = []
        self.powered = False

    # -- the APDU application ------------------------------------------------
    def apdu(self, cmd: bytes) -> bytes:
        return b"\x6D\x00"

    def reset(self) -> None:
        """Power-on / reset: forget the selected application and files."""

    # -- socket side -----------------------------------------------------------
    def insert(self, timeout: float = 10.0) -> None:
        """Connect to vpcd (the reader sees a card)."""
        self._sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._serve, args=(self._sock,), name="vpcd-card", daemon=True)
        self._thread.start()

    def remove(self) -> None:
        s, self._sock = self._sock, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def _recv_exact(self, s: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            try:
                chunk = s.recv(n - len(buf))
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def _send(self, s: socket.socket, payload: bytes) -> None:
        s.sendall(struct.pack(">H", len(payload)) + payload)

    def _serve(self, s: socket.socket) -> None:
        while True:
            head = self._recv_exact(s, 2)
            if head is None:
                return
            (n,) = struct.unpack(">H", head)
            msg = self._recv_exact(s, n) if n else b""
            if msg is None:
                return
            try:
                if len(msg) == 1:
                    code = msg[0]
                    if code == 0:
                        self.powered = False
                    elif code in (1, 2):
                        self.powered = True
                        self.reset()
                    elif code == 4:
                        self._send(s, self.atr)
                    continue
                self.apdus.append(msg)
                self._send(s, self.apdu(msg))
            except OSError:
                return


def sample_sscard_records(id_number: str = "", name: str = "张小明") -> dict[str, dict[int, bytes]]:
    """TLV contents of EF05 and EF06 for a fictitious card."""
    if not id_number:
        id_number = sample_id_number()
    return {
        "EF05": {
            0x01: bytes.fromhex("37030000001234560001"),  # card identification code (issuer + serial)
            0x03: b"3.00",
            0x05: bytes.fromhex("20200101"),
            0x06: bytes.fromhex("20300101"),
            0x07: b"A12345678",
        },
        "EF06": {
            0x08: id_number.encode("ascii"),
            0x09: name.encode("gbk"),
            0x0A: b"1",
            0x0B: b"01",
            0x0D: bytes.fromhex(id_number[6:14]),
        },
    }


class SocialSecurityCardApp(VirtualCard):
    """A social security card: SELECT by AID, SELECT EF, READ RECORD by tag, PSAM/PIN protection."""

    atr = bytes.fromhex("3B6D00000081" "5448534D00" "0A434F533033")  # fictitious, 社保卡-like

    def __init__(self, records: dict[str, dict[int, bytes]] | None = None, *, psam_required: bool = False,
                 host: str = "127.0.0.1", port: int = VPCD_PORT):
        super().__init__(host, port)
        self.records = records or sample_sscard_records()
        self.psam_required = psam_required
        self.app_selected = False
        self.ef: str | None = None
        self.fail_next: bytes | None = None  # force a status word on the next APDU (fault injection)

    def reset(self) -> None:
        self.app_selected = False
        self.ef = None

    def apdu(self, cmd: bytes) -> bytes:
        if self.fail_next is not None:
            sw, self.fail_next = self.fail_next, None
            return sw
        if len(cmd) < 4:
            return b"\x67\x00"
        cla, ins, p1, p2 = cmd[:4]
        if cla not in (0x00, 0x80):
            return b"\x6E\x00"
        body = cmd[5:5 + cmd[4]] if len(cmd) > 5 else b""
        if ins == 0xA4:  # SELECT
            if p1 == 0x04:
                if body == SSC_AID:
                    self.app_selected, self.ef = True, None
                    return SW_OK
                return b"\x6A\x82"
            if p1 == 0x02 and len(body) == 2:
                if not self.app_selected:
                    return b"\x69\x86"  # command not allowed: no current application
                name = "EF%02X" % body[1] if body[0] == 0xEF else ""
                if name not in self.records:
                    return b"\x6A\x82"
                self.ef = name
                return SW_OK
            return b"\x6A\x86"
        if ins == 0xB2:  # READ RECORD, P1 = tag, P2 = 04
            if self.ef is None:
                return b"\x69\x86"
            if p2 != 0x04:
                return b"\x6A\x86"
            if self.ef == "EF06" and self.psam_required:
                return b"\x69\x82"  # security status not satisfied: external authentication by a PSAM
            value = self.records[self.ef].get(p1)
            if value is None:
                return b"\x6A\x83"
            rec = bytes([p1, len(value)]) + value
            le = cmd[4] if len(cmd) == 5 else None
            if le not in (None, 0) and le != len(rec):
                return bytes([0x6C, len(rec)])  # wrong Le: here is the right one
            return rec + SW_OK
        if ins == 0x20:  # VERIFY PIN: this card has none to verify
            return b"\x6A\x81"
        return b"\x6D\x00"
