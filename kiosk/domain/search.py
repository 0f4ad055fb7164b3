"""Catalog search for people who cannot type Chinese on a touch screen.

A query is matched three ways: pinyin initials (``ylbx`` → 养老保险), full pinyin
with an unfinished last syllable (``yanglaob``), or a Chinese substring.  Matches are
ranked by where they hit: main item name and domain first, then the sub-item name,
then the incidental text (materials, conditions, category).  Ties break on position,
name length and code, so the order is deterministic.

Heteronyms: each character's reading comes from pypinyin in context (银行 → yin hang,
重度 → zhong du), with PHRASE_FIXES for phrases its table reads wrongly (重置 →
chong zhi).  A heteronym's other readings are accepted too in the item and domain
names, as a guess ranked after every sure hit, because no phrase table knows every
phrase people type.

The index is built once, when the catalog loads; a search touches no pypinyin.
"""
from __future__ import annotations

import bisect
import dataclasses
import functools
import re
import types
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class _Named(Protocol):
    name: str


class Searchable(Protocol):
    """What the index reads from a catalog item (kept apart so the catalog can own the index)."""

    code: str
    main_name: str
    sub_name: str
    domain: str
    category: str
    fee: str

    @property
    def materials(self) -> Sequence[_Named]: ...

    @property
    def conditions(self) -> Sequence[str]: ...


T = TypeVar("T", bound=Searchable)

__all__ = ["SearchIndex", "Syllables", "to_syllables", "normalise_query", "TIER_MAIN", "TIER_SUB",
           "TIER_INCIDENTAL"]

TIER_MAIN, TIER_SUB, TIER_INCIDENTAL = 0, 1, 2
#: Phrases pypinyin reads wrongly in context, as found in the catalog's names.
PHRASE_FIXES: dict[str, list[list[str]]] = {
    "重置": [["chóng"], ["zhì"]],
}


@functools.cache
def _pypinyin() -> types.ModuleType:
    import pypinyin  # noqa: PLC0415 - deferred: its dictionaries take ~0.26 s to load and the home screen needs no search

    pypinyin.load_phrases_dict(PHRASE_FIXES)
    return pypinyin

_HAN = re.compile(r"[\u3400-\u9fff]")
#: How a query hit: Chinese text or full pinyin read in context beat initials, and any
#: reading in context beats a heteronym's other reading (种植 is not "chongzhi").
KINDS = ("chinese", "full", "initials", "full_heteronym", "initials_heteronym")
_KIND_RANK = {"chinese": 0, "full": 0, "initials": 1, "full_heteronym": 2, "initials_heteronym": 3}


@dataclass(frozen=True)
class Syllables:
    """One text as positions: the characters kept and, per position, its accepted readings."""
    text: str  # the searchable characters (punctuation dropped)
    readings: tuple[tuple[str, ...], ...]  # full pinyin without tones, all readings, sorted
    initials: tuple[frozenset[str], ...]
    # The reading in context, flattened for fast substring search:
    joined: str  # "juminyanglaobaoxian"
    starts: tuple[int, ...]  # offset in `joined` where each position's syllable starts
    first_letters: str  # "jmylbx": one letter per position
    has_heteronym: bool  # some position has another reading worth a guess
    initial_set: frozenset[str]  # every letter any position can start with
    letter_set: frozenset[str]  # every letter any reading uses


@functools.cache
def _heteronyms(ch: str) -> frozenset[str]:
    py = _pypinyin()
    return frozenset(r for r in py.pinyin(ch, style=py.Style.NORMAL, heteronym=True)[0] if r.isascii())


def to_syllables(text: str) -> Syllables:
    """Split a text into searchable positions with their pinyin readings."""
    text = unicodedata.normalize("NFKC", text).lower()
    chars: list[str] = []
    readings: list[frozenset[str]] = []
    context: list[str] = []
    py = _pypinyin()
    contextual = py.lazy_pinyin(text, style=py.Style.NORMAL, errors=lambda s: list(s))
    # lazy_pinyin returns one reading per Han character and, via `errors`, one entry per
    # other character, so the lists line up with `text`.
    if len(contextual) != len(text):  # pragma: no cover - defensive: fall back per character
        contextual = [py.lazy_pinyin(c, errors=lambda s: list(s))[0] for c in text]
    for ch, reading in zip(text, contextual):
        if _HAN.match(ch) and reading.isascii():
            chars.append(ch)
            readings.append(frozenset({reading}) | _heteronyms(ch))
            context.append(reading)
        elif ch.isalnum() and ch.isascii():
            chars.append(ch)
            readings.append(frozenset({ch}))
            context.append(ch)
        # punctuation and spaces are not searchable positions
    starts, offset = [], 0
    for syl in context:
        starts.append(offset)
        offset += len(syl)
    return Syllables(
        text="".join(chars),
        readings=tuple(tuple(sorted(rs)) for rs in readings),
        initials=tuple(frozenset(r[0] for r in rs) for rs in readings),
        joined="".join(context),
        starts=tuple(starts),
        first_letters="".join(syl[0] for syl in context),
        has_heteronym=any(len(rs) > 1 for rs in readings),
        initial_set=frozenset(r[0] for rs in readings for r in rs),
        letter_set=frozenset(c for rs in readings for r in rs for c in r),
    )


def normalise_query(query: str) -> str:
    """Lower case, half-width, no spaces, apostrophes or punctuation."""
    q = unicodedata.normalize("NFKC", query or "").lower()
    return "".join(ch for ch in q if _HAN.match(ch) or (ch.isalnum() and ch.isascii()))


def _sure_full(s: Syllables, q: str) -> tuple[int, int] | None:
    """(first, end) positions where the reading in context spells q from a syllable start."""
    i = s.joined.find(q)
    while i >= 0:
        pos = bisect.bisect_left(s.starts, i)
        if pos < len(s.starts) and s.starts[pos] == i:
            return pos, bisect.bisect_left(s.starts, i + len(q))
        i = s.joined.find(q, i + 1)
    return None


def _guess_initials(initials: tuple[frozenset[str], ...], q: str) -> int | None:
    n, m = len(initials), len(q)
    for i in range(n - m + 1):
        if all(q[k] in initials[i + k] for k in range(m)):
            return i
    return None


def _guess_full_from(readings: tuple[tuple[str, ...], ...], i: int, q: str, qpos: int) -> int | None:
    """End position (exclusive) if q[qpos:] is spelled by any readings from position i on."""
    if qpos == len(q):
        return i
    if i >= len(readings):
        return None
    rest = q[qpos:]
    for syl in readings[i]:
        if rest.startswith(syl):
            end = _guess_full_from(readings, i + 1, q, qpos + len(syl))
            if end is not None:
                return end
        if syl.startswith(rest):  # the query ends inside this syllable: a prefix
            return i + 1
    return None


def _guess_full(s: Syllables, q: str) -> tuple[int, int] | None:
    first = q[0]
    for i, initials in enumerate(s.initials):
        if first not in initials:
            continue
        end = _guess_full_from(s.readings, i, q, 0)
        if end is not None:
            return i, end
    return None


def _sure_hit(s: Syllables, q: str, chinese: bool) -> tuple[str, int, str] | None:
    """How `q` hits text `s` as read in context: (kind, position, Chinese text hit), or None."""
    if chinese:
        pos = s.text.find(q)
        return None if pos < 0 else ("chinese", pos, q)
    if len(q) >= 2:
        span = _sure_full(s, q)
        if span is not None:
            return ("full", span[0], s.text[span[0]:span[1]])
    pos = s.first_letters.find(q)
    if pos >= 0:
        return ("initials", pos, s.text[pos:pos + len(q)])
    return None


def _guess_hit(s: Syllables, q: str) -> tuple[str, int, str] | None:
    """Like _sure_hit, with every reading of each heteronym (pinyin queries only)."""
    if not s.has_heteronym:
        return None
    letters = set(q)
    if len(q) >= 2 and letters <= s.letter_set:
        span = _guess_full(s, q)
        if span is not None:
            return ("full_heteronym", span[0], s.text[span[0]:span[1]])
    pos = _guess_initials(s.initials, q) if letters <= s.initial_set else None
    if pos is not None:
        return ("initials_heteronym", pos, s.text[pos:pos + len(q)])
    return None


@dataclass(frozen=True)
class _Entry(Generic[T]):
    item: T
    texts: tuple[tuple[int, Syllables], ...]  # (tier, text)
    length: int


@dataclass(frozen=True, order=True)
class _Rank:
    guess: int  # 1 when only a heteronym's other reading matched: ranked after every sure hit
    tier: int
    kind: int
    popularity: int  # minus the number of items hit by the same Chinese word (see search())
    sub_too: int  # 0 when a main-name hit is confirmed by the sub-item name, else 1
    position: int
    length: int
    code: str


class SearchIndex(Generic[T]):
    """Built once from the catalog's items; `search` is pure lookup."""

    def __init__(self, items: Sequence[T]):
        entries = []
        for it in items:
            texts: list[tuple[int, Syllables]] = [
                (TIER_MAIN, to_syllables(it.main_name)),
                (TIER_MAIN, to_syllables(it.domain)),
                (TIER_SUB, to_syllables(it.sub_name)),
            ]
            incidental: list[str] = [m.name for m in it.materials]
            incidental += list(it.conditions)
            incidental += [it.category, it.fee]
            texts += [(TIER_INCIDENTAL, to_syllables(t)) for t in incidental]
            entries.append(_Entry(it, tuple(texts), len(it.main_name) + len(it.sub_name)))
        self._entries: tuple[_Entry[T], ...] = tuple(entries)

    def _rank(self, entry: _Entry[T], q: str, chinese: bool) -> tuple[_Rank, str] | None:
        best = self._best(entry, q, chinese, guess=False)
        if best is None and not chinese:
            best = self._best(entry, q, chinese, guess=True)
        return best

    def _best(self, entry: _Entry[T], q: str, chinese: bool, guess: bool) -> tuple[_Rank, str] | None:
        best: tuple[_Rank, str] | None = None
        sub_hit: bool | None = None
        for tier, s in entry.texts:
            if best is not None and tier > best[0].tier:
                break  # texts are ordered by tier; a lower tier cannot win
            if guess and tier == TIER_INCIDENTAL:
                break  # guesses only in names: long incidental text would match anything
            hit = _guess_hit(s, q) if guess else _sure_hit(s, q, chinese)
            if hit is None:
                continue
            kind, pos, matched = hit
            if tier == TIER_MAIN and sub_hit is None:
                sub = entry.texts[2][1]
                sub_hit = (_guess_hit(sub, q) if guess else _sure_hit(sub, q, chinese)) is not None
            sub_too = 0 if tier == TIER_MAIN and sub_hit else 1
            r = _Rank(int(guess), tier, _KIND_RANK[kind], 0, sub_too, pos, entry.length,
                      entry.item.code)
            if best is None or r < best[0]:
                best = (r, matched)
        return best

    def _ranked(self, query: str) -> list[tuple[_Rank, _Entry[T]]]:
        q = normalise_query(query)
        if not q:
            return []
        chinese = bool(_HAN.search(q))
        hits = [(h, e) for e in self._entries if (h := self._rank(e, q, chinese)) is not None]
        # Initials are ambiguous (ylbx: 养老保险 or 医疗保险?).  Like an input method, prefer
        # the word the catalog uses most among the hits: more items, more likely meant.
        counts: dict[str, int] = {}
        for (_, matched), _ in hits:
            counts[matched] = counts.get(matched, 0) + 1
        ranked = [(dataclasses.replace(r, popularity=-counts[matched]), e)
                  for (r, matched), e in hits]
        ranked.sort(key=lambda x: x[0])
        return ranked

    def search(self, query: str, limit: int = 20) -> list[T]:
        """Items matching `query`, best first; [] for an empty query."""
        if limit <= 0:
            return []
        return [e.item for _, e in self._ranked(query)[:limit]]

    def explain(self, query: str) -> list[tuple[str, int, str]]:
        """(code, tier, kind) per hit in rank order, for tests and technicians."""
        chinese = bool(_HAN.search(normalise_query(query)))
        names = {v: k for k, v in _KIND_RANK.items() if k != "chinese"}
        return [(e.item.code, r.tier, "chinese" if chinese else names[r.kind])
                for r, e in self._ranked(query)]
