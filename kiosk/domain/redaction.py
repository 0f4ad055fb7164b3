"""What counts as personal data or a secret, in one place: log lines, technician reports and diagnostics all use it.

Numbers are matched on a folded copy of the text (NFKC, so full-width digits count;
any Unicode decimal digit read as its ASCII value; invisible format characters such
as a zero-width space dropped), and a number may be written in groups separated by
spaces, dashes (also " - " and the minus sign) or dots (`370306 19900101 123X`,
`138-1234-5678`, `+86 138 1234 5678`): the groups are joined before the ID, phone
and bank rules are tried. The replacement is made in the original text, so the rest
of a line is kept as written.

Names are not guessable by pattern, so the session registers the names it holds
and unregisters them when it wipes; they are matched on the folded text too (a
full-width spelling of a Latin name counts). A wiped name keeps being redacted
afterwards (a log line written after the wipe, a technician's tail of an older
line): the last `WIPED_NAMES_KEPT` wiped names are remembered as keyed hashes only,
never as text.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

#: How many wiped names stay redacted (as keyed hashes), oldest forgotten first.
WIPED_NAMES_KEPT = 256
#: Longer names are not remembered after the wipe (each remembered length costs a scan of the line).
_MAX_WIPED_NAME_LEN = 40

# A digit group: digits, and an X only as the final character of a group (the ID check character).
_GROUP_RE = re.compile(r"[0-9]+(?:[Xx](?![0-9A-Za-z]))?", re.ASCII)
# What may stand between two groups of one number (after NFKC): one or two spaces, or one or two
# dashes or dots with at most one space on either side ("138 - 1234 - 5678").
_SEP_RE = re.compile(r"[ \t\u00a0]{1,2}|[ \t\u00a0]?[.\-\u2010-\u2015\u2212\u00b7\u30fb]{1,2}[ \t\u00a0]?")
# A whole number once its groups are joined. ID numbers (18 with X, old 15) must not touch a
# letter (a tracking number such as LQ261127234567892 holds 15 digits); mainland mobiles (with an
# optional 86 / 0086 country code) and 16-19 digit bank cards only must not touch another digit.
_ID_NUMBER_RE = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}", re.ASCII)
_OTHER_NUMBER_RE = re.compile(r"(?:00)?(?:86)?1[3-9][0-9]{9}|[0-9]{16,19}", re.ASCII)
_MAX_NUMBER_LEN = 19


def fold(text: str) -> tuple[str, list[int]]:
    """NFKC per character, every Unicode decimal digit as ASCII, format characters (Cf: zero-width space,
    soft hyphen, BOM...) dropped; with the source index of each folded character."""
    if text.isascii():
        return text, list(range(len(text)))
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        if ch.isascii():
            out.append(ch)
            index.append(i)
            continue
        if unicodedata.category(ch) == "Cf":
            continue  # invisible: "138\u200b1234\u200b5678" is the phone number as written
        d = unicodedata.decimal(ch, None)
        n = str(d) if d is not None else unicodedata.normalize("NFKC", ch)
        out.append(n)
        index.extend([i] * len(n))
    return "".join(out), index


def _number_spans(folded: str) -> list[tuple[int, int]]:
    """Spans (in folded) of ID numbers, phones and bank numbers, with or without separators between digit groups."""
    groups = [(m.start(), m.end(), m.group()) for m in _GROUP_RE.finditer(folded)]
    spans: list[tuple[int, int]] = []
    for i, (start, _end, _digits) in enumerate(groups):
        joined = ""
        for j in range(i, len(groups)):
            g_start, g_end, g_digits = groups[j]
            if j > i:
                prev_end, prev_digits = groups[j - 1][1], groups[j - 1][2]
                if prev_digits[-1] in "Xx" or not _SEP_RE.fullmatch(folded, prev_end, g_start):
                    break
            joined += g_digits
            if len(joined) > _MAX_NUMBER_LEN + 1:
                break
            s = start - 1 if start > 0 and folded[start - 1] == "+" else start
            if _OTHER_NUMBER_RE.fullmatch(joined) or (
                    _ID_NUMBER_RE.fullmatch(joined) and not _is_letter(folded, start - 1)
                    and not _is_letter(folded, g_end)):
                spans.append((s, g_end))
            elif joined[-1] in "Xx" and _OTHER_NUMBER_RE.fullmatch(joined, 0, len(joined) - 1):
                # a phone or an 18-digit run followed by a letter X ("13812345678X"): the digits go, the X stays
                spans.append((s, g_end - 1))
    return spans


def _is_letter(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isascii() and text[i].isalpha()


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


class Redactor:
    """Replaces personal data in text; thread-safe registry of session-held names (and hashes of wiped ones)."""

    def __init__(self, wiped_kept: int = WIPED_NAMES_KEPT) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}  # as registered -> folded (what is searched for)
        self._key = os.urandom(32)  # per process: the hashes mean nothing outside it
        # digest -> (folded length, quick hash of the whole name, quick hash of its first character)
        self._wiped: OrderedDict[bytes, tuple[int, int, int]] = OrderedDict()
        self._wiped_kept = wiped_kept

    def _digest(self, folded: str) -> bytes:
        return hashlib.blake2b(folded.encode("utf-8", "surrogatepass"), key=self._key, digest_size=16).digest()

    def _remember_locked(self, value: str) -> None:
        folded = fold(value.strip())[0]
        if not 2 <= len(folded) <= _MAX_WIPED_NAME_LEN:
            return
        d = self._digest(folded)
        self._wiped[d] = (len(folded), hash(folded), hash(folded[0]))
        self._wiped.move_to_end(d)
        while len(self._wiped) > self._wiped_kept:
            self._wiped.popitem(last=False)

    def add(self, *values: str | None) -> None:
        with self._lock:
            for v in values:
                if v and len(v.strip()) >= 2:
                    folded = fold(v.strip())[0]
                    if folded:
                        self._secrets[v] = folded

    def discard(self, *values: str | None) -> None:
        """The session no longer holds these names; they stay redacted through their hash."""
        with self._lock:
            for v in values:
                if v:
                    if v in self._secrets:
                        self._remember_locked(v)
                    self._secrets.pop(v, None)

    def clear(self) -> None:
        """The session wiped: every held name moves to the hashed memory of wiped names."""
        with self._lock:
            for v in self._secrets:
                self._remember_locked(v)
            self._secrets.clear()

    def forget_wiped(self) -> None:
        """Drop the hashes of wiped names too (tests; a technician's explicit reset)."""
        with self._lock:
            self._wiped.clear()

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = set(self._secrets.values())
            wiped = {d: length for d, (length, _q, _f) in self._wiped.items()}
            quick = {q for _length, q, _f in self._wiped.values()}
            lengths_by_first: dict[int, set[int]] = {}
            for length, _q, first in self._wiped.values():
                lengths_by_first.setdefault(first, set()).add(length)
        folded, index = fold(text)
        spans = _number_spans(folded)
        for name in secrets:
            at = folded.find(name)
            while at >= 0:
                spans.append((at, at + len(name)))
                at = folded.find(name, at + 1)
        if wiped:
            spans.extend(self._wiped_spans(folded, wiped, quick, lengths_by_first))
        if spans:
            parts: list[str] = []
            pos = 0
            for f_start, f_end in _merge(spans):
                o_start, o_end = index[f_start], index[f_end - 1] + 1
                if o_start < pos:  # two folded spans meeting inside one source character
                    pos = max(pos, o_end)
                    continue
                parts.append(text[pos:o_start])
                parts.append(REDACTED)
                pos = o_end
            parts.append(text[pos:])
            text = "".join(parts)
        return text

    def _wiped_spans(self, folded: str, wiped: dict[bytes, int], quick: set[int],
                     lengths_by_first: dict[int, set[int]]) -> list[tuple[int, int]]:
        """Every substring whose keyed hash is a wiped name's.

        Only positions whose character hashes like a wiped name's first character are tried (the
        characters are found by one regex pass), then the cheap str hash, then the keyed digest: a
        megabyte of log text costs milliseconds, not seconds.
        """
        firsts = [ch for ch in set(folded) if hash(ch) in lengths_by_first]
        if not firsts:
            return []
        spans: list[tuple[int, int]] = []
        for m in re.finditer("[" + "".join(re.escape(ch) for ch in firsts) + "]", folded):
            start = m.start()
            for length in lengths_by_first[hash(m.group())]:
                piece = folded[start:start + length]
                if len(piece) == length and hash(piece) in quick and self._digest(piece) in wiped:
                    spans.append((start, start + length))
        return spans


REDACTOR = Redactor()


#: configuration and device-setting keys whose values never leave the kiosk in a report
SECRET_KEY_RE = re.compile(r"(pin|password|passwd|secret|token|private|credential|api_?key)", re.I)
SECRET_PLACEHOLDER = "**REDACTED**"


def is_secret_key(name: str) -> bool:
    return bool(SECRET_KEY_RE.search(name))


def redact_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with secret-looking keys' values replaced (empty values stay, so a missing PIN is visible)."""
    return {k: (SECRET_PLACEHOLDER if is_secret_key(k) and v not in (None, "", []) else v)
            for k, v in settings.items()}
