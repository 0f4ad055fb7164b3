"""GA 467 (GA/T 467-2019) SAM module frames: encode, decode, resynchronise, status codes.

Frame: ``AA AA AA 96 69 | LEN_HI LEN_LO | body | CHK`` where LEN (big-endian) counts
every byte after itself including CHK, and CHK is the XOR of LEN_HI through the
last body byte. A request body is ``CMD PARA [DATA]``, a response body is
``SW1 SW2 SW3 [DATA]``.

Serial lines deliver noise and frames split across reads, so :class:`FrameDecoder`
is incremental: feed it whatever arrived, get complete, checksum-verified frames
back, with garbage skipped and counted.
"""
from __future__ import annotations

from dataclasses import dataclass

from devices.base import DeviceError

__all__ = [
    "PREAMBLE", "MAX_LEN", "GA467Frame", "FrameError", "FrameDecoder", "SamError",
    "SW3_CODES", "sam_error", "xor_checksum", "Command", "parse_read_data", "ReadData",
]

PREAMBLE = b"\xAA\xAA\xAA\x96\x69"
#: Longest legal LEN: text + photo + 1024 bytes of fingerprint is 0x090A; leave headroom.
MAX_LEN = 0x0C00
MIN_LEN = 3  # request: CMD PARA CHK; response: SW1 SW2 SW3 + CHK is 4


class Command:
    """(CMD, PARA) pairs of the requests the kiosk sends."""

    SAM_STATUS = (0x11, 0xFF)
    RESET_SAM = (0x10, 0xFF)
    FIND_CARD = (0x20, 0x01)
    SELECT_CARD = (0x20, 0x02)
    READ_BASE = (0x30, 0x01)  # text + photo
    READ_BASE_FP = (0x30, 0x10)  # text + photo + fingerprint


def xor_checksum(data: bytes) -> int:
    c = 0
    for b in data:
        c ^= b
    return c


class FrameError(ValueError):
    """A frame that is not a valid GA 467 frame; ``reason`` is machine-readable."""

    MESSAGES = {
        "bad_preamble": "帧头不是 AA AA AA 96 69",
        "bad_length": "帧长度不正确",
        "bad_checksum": "帧校验和错误",
    }

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        super().__init__(self.MESSAGES[reason] + (f"（{detail}）" if detail else ""))


@dataclass(frozen=True)
class GA467Frame:
    """One frame; ``body`` is everything between LEN and CHK."""

    body: bytes

    # -- construction --------------------------------------------------------
    @classmethod
    def request(cls, cmd: int, para: int, data: bytes = b"") -> GA467Frame:
        return cls(bytes([cmd, para]) + data)

    @classmethod
    def response(cls, sw3: int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> GA467Frame:
        return cls(bytes([sw1, sw2, sw3]) + data)

    def encode(self) -> bytes:
        n = len(self.body) + 1
        if n > 0xFFFF:
            raise ValueError("frame too long")
        head = n.to_bytes(2, "big") + self.body
        return PREAMBLE + head + bytes([xor_checksum(head)])

    @classmethod
    def decode(cls, raw: bytes) -> GA467Frame:
        """Strict decode of exactly one whole frame (preamble to checksum)."""
        raw = bytes(raw)
        if not raw.startswith(PREAMBLE):
            raise FrameError("bad_preamble")
        if len(raw) < len(PREAMBLE) + 2:
            raise FrameError("bad_length", "帧不完整")
        n = int.from_bytes(raw[5:7], "big")
        if n < MIN_LEN or n > MAX_LEN:
            raise FrameError("bad_length", f"LEN={n}")
        if len(raw) != 7 + n:
            raise FrameError("bad_length", f"LEN={n}, 实际 {len(raw) - 7}")
        if xor_checksum(raw[5:-1]) != raw[-1]:
            raise FrameError("bad_checksum")
        return cls(raw[7:-1])

    # -- views -------------------------------------------------------------------
    @property
    def cmd(self) -> tuple[int, int]:
        return self.body[0], self.body[1]

    @property
    def sw(self) -> tuple[int, int, int]:
        if len(self.body) < 3:
            raise FrameError("bad_length", "响应少于 3 字节状态")
        return self.body[0], self.body[1], self.body[2]

    @property
    def sw3(self) -> int:
        return self.sw[2]

    @property
    def data(self) -> bytes:
        """Response data after SW1 SW2 SW3."""
        return self.body[3:]

    @property
    def request_data(self) -> bytes:
        return self.body[2:]


class FrameDecoder:
    """Incremental decoder: feed bytes, get whole verified frames; skips noise and bad frames."""

    def __init__(self, max_buffer: int = 4 * MAX_LEN):
        self._buf = bytearray()
        self.max_buffer = max_buffer
        self.skipped_bytes = 0
        self.bad_checksums = 0
        self.bad_lengths = 0

    def reset(self) -> None:
        self._buf.clear()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[GA467Frame]:
        self._buf += data
        out: list[GA467Frame] = []
        while True:
            i = self._buf.find(PREAMBLE)
            if i < 0:
                # keep a tail that might be the start of a preamble split across reads
                keep = 0
                for k in range(min(len(PREAMBLE) - 1, len(self._buf)), 0, -1):
                    if self._buf.endswith(PREAMBLE[:k]):
                        keep = k
                        break
                self.skipped_bytes += len(self._buf) - keep
                del self._buf[: len(self._buf) - keep]
                return out
            if i:
                self.skipped_bytes += i
                del self._buf[:i]
            if len(self._buf) < 7:
                return out
            n = int.from_bytes(self._buf[5:7], "big")
            if n < MIN_LEN or n > MAX_LEN:
                # not a real header (noise that looked like a preamble): resync one byte on
                self.bad_lengths += 1
                self.skipped_bytes += 1
                del self._buf[:1]
                continue
            if len(self._buf) < 7 + n:
                if len(self._buf) > self.max_buffer:  # cannot happen with MAX_LEN, belt and braces
                    self._buf.clear()
                return out
            raw = bytes(self._buf[: 7 + n])
            if xor_checksum(raw[5:-1]) != raw[-1]:
                # a corrupted frame, or a false preamble inside noise: skip past this preamble start
                self.bad_checksums += 1
                self.skipped_bytes += 1
                del self._buf[:1]
                continue
            del self._buf[: 7 + n]
            out.append(GA467Frame(raw[7:-1]))


class SamError(DeviceError):
    """A SAM status word other than success, with a Chinese message and a stable code."""

    def __init__(self, sw3: int, code: str, message: str):
        self.sw3 = sw3
        super().__init__(code, message, detail=f"SW3={sw3:02X}")


#: SW3 -> (code, message). Messages are what the citizen or technician sees.
SW3_CODES: dict[int, tuple[str, str]] = {
    0x90: ("ok", "操作成功"),
    0x91: ("no_content", "证件中没有此项内容"),
    0x9F: ("ok", "找到证件"),
    0x01: ("port_error", "读卡模块端口错误，请联系工作人员"),
    0x02: ("timeout", "读卡模块接收超时，请重新放置证件"),
    0x03: ("transfer_error", "读卡模块数据传输错误，请重新放置证件"),
    0x10: ("checksum_error", "读卡模块校验和错误，请重新放置证件"),
    0x11: ("length_error", "读卡模块长度错误，请联系工作人员"),
    0x21: ("bad_command", "读卡模块不支持此命令，请联系工作人员"),
    0x23: ("unauthorised", "读卡模块越权操作，请联系工作人员"),
    0x24: ("sam_fault", "读卡模块未知错误，请联系工作人员"),
    0x31: ("card_auth_failed", "证件认证失败，请重新放置证件"),
    0x32: ("card_auth_failed", "证件认证失败，请重新放置证件"),
    0x33: ("card_auth_failed", "证件认证失败，请重新放置证件"),
    0x37: ("fingerprint_error", "指纹信息读取错误，请重新放置证件"),
    0x3F: ("length_error", "读卡模块长度错误，请重新放置证件"),
    0x40: ("unknown_card", "无法识别的证件类型，请放入第二代居民身份证"),
    0x41: ("read_failed", "读取证件失败，请重新放置证件"),
    0x47: ("sam_fault", "读卡模块随机数错误，请联系工作人员"),
    0x60: ("sam_fault", "读卡模块自检失败，请联系工作人员"),
    0x66: ("sam_fault", "读卡模块未授权，请联系工作人员"),
    0x80: ("no_card", "请将身份证放在读卡区"),
    0x81: ("select_failed", "选卡失败，请重新放置证件"),
}

OK_CODES = {0x90, 0x9F}


def sam_error(sw3: int) -> SamError:
    code, msg = SW3_CODES.get(sw3, ("sam_fault", "读卡模块返回未知状态，请联系工作人员"))
    return SamError(sw3, code, msg)


@dataclass(frozen=True)
class ReadData:
    text: bytes
    photo: bytes
    fingerprint: bytes


class MalformedText(DeviceError):
    code = "malformed_text"
    message = "证件信息格式不正确，请重新放置证件"


def parse_read_data(data: bytes) -> ReadData:
    """Split a read-base response's data into text, photo, fingerprint (layout found by arithmetic).

    Without fingerprint: TL(2) PL(2) text photo. With: TL PL FL text photo fp.
    """
    if len(data) < 4:
        raise MalformedText(detail="read data shorter than its header")
    tl = int.from_bytes(data[0:2], "big")
    pl = int.from_bytes(data[2:4], "big")
    if 4 + tl + pl == len(data):
        return ReadData(data[4:4 + tl], data[4 + tl:], b"")
    if len(data) >= 6:
        fl = int.from_bytes(data[4:6], "big")
        if 6 + tl + pl + fl == len(data):
            return ReadData(data[6:6 + tl], data[6 + tl:6 + tl + pl], data[6 + tl + pl:])
    raise MalformedText(detail="read data lengths do not add up")
