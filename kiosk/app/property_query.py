"""不动产登记信息查询 (issue 14 item 2): the public real-estate query, searched in the background, and its slip.

Anyone may search, without identification: the answer is public (natural state and
restrictions) and never names the owner. The query is checked by the domain's rule
(kiosk.domain.real_estate) before anything is sent, so a wrong unit number is explained part by
part on screen. The search runs on the pool under the visit's token and comes back as a
``property_results`` or ``property_error`` event; the last answer stays in the visit's scratch
(wiped with the visit) for 「打印查询单」, whose outcome comes back as ``property_printed``.
Query texts (addresses, certificate numbers) are never logged.
"""
from __future__ import annotations

import datetime as _dt
import functools
import logging
from typing import Any, cast

from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.app.slip_printing import SlipTexts, print_slip
from kiosk.domain.property_slip import PropertySlip, compose_property_slip, unit_views, units_from_answer
from kiosk.domain.real_estate import UNIT_PARTS, InvalidPropertyQuery, Kind, PropertyQuery, parse_property_query
from kiosk.domain.search import normalise_query, to_syllables
from kiosk.domain.session import VisitEnded
from kiosk.ports.platform import PermanentError, RetryableError

log = logging.getLogger(__name__)

SLIP_TEXTS = SlipTexts(printed="查询单已打印，请从下方出纸口取走",
                       failed="查询单没有打印出来。可以用手机拍下屏幕上的结果，或请工作人员帮忙",
                       paper_out="打印机缺纸，查询单没有打印出来。可以用手机拍下屏幕上的结果，或请工作人员加纸后再打印")

__all__ = ["PropertyQueryService", "ADDRESS_WORDS", "OFFLINE_MESSAGE", "NOT_FOUND_MESSAGE"]

SCRATCH_KEY = "property_result"
KINDS = ("address", "certificate_number", "unit_number")
OFFLINE_MESSAGE = ("网络中断，现在查不到不动产登记信息。请过一会儿再点「查询」，"
                   "或到区不动产登记中心窗口查询；需要帮忙请点「帮办代办」")
NOT_FOUND_MESSAGE = "没有查到这处不动产。请核对后再查；坐落地址可以少写几个字，比如只写路名和门牌号"
FAILED_MESSAGE = "暂时查不到，请稍后再试，或点「帮办代办」找工作人员"
#: 周村区's public place names (towns, streets, roads, villages) the 坐落 keyboard offers by pinyin, like the
#: search screen: a citizen types initials (SCL) or pinyin (sichou) and taps 丝绸路.
ADDRESS_WORDS: tuple[str, ...] = (
    "淄博市", "周村区", "丝绸路", "正阳路", "新建中路", "新建东路", "新建西路", "青年路", "东门路", "大街",
    "中心街", "纬三路", "工业园", "古商城", "北郊镇", "南郊镇", "王村镇", "萌水镇", "丝绸路街道", "大街街道",
    "青年路街道", "永安街道", "城北路街道", "西铺村", "商铺",
)


@functools.cache
def _word_index() -> tuple[tuple[str, str, str], ...]:
    """(word, initials, full pinyin) of each place word; built on first use (pypinyin is deferred)."""
    out = []
    for w in ADDRESS_WORDS:
        s = to_syllables(w)
        out.append((w, s.first_letters, s.joined))
    return tuple(out)


def _when(iso: str) -> str:
    try:
        return _dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


@logged_entry_points
class PropertyQueryService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ typing help
    def address_words(self, typed: str, limit: int = 6) -> list[str]:
        """Place words whose pinyin initials or full pinyin start with `typed` (or that contain it)."""
        q = normalise_query(typed)
        if not q:
            return []
        hits = [w for w, initials, joined in _word_index()
                if initials.startswith(q) or joined.startswith(q) or q in w]
        return hits[:limit]

    @staticmethod
    def unit_part_span(reason: str) -> tuple[int, int] | None:
        """Which characters of a unit number a reason is about (None: the whole number)."""
        return next(((a, b) for code, a, b in UNIT_PARTS if code == reason), None)

    # ------------------------------------------------------------------ searching
    def check(self, by: str, query_text: str) -> PropertyQuery | InvalidPropertyQuery:
        """The normalised query, or the domain's refusal (its ``reason`` and ``message``), not raised."""
        if by not in KINDS:
            raise ValueError(f"no such search: {by}")
        try:
            return parse_property_query(query_text, by=cast(Kind, by))
        except InvalidPropertyQuery as e:
            return e

    def search(self, by: str, query_text: str) -> InvalidPropertyQuery | None:
        """Start a search (answer: a ``property_results`` or ``property_error`` event); a query the rule
        refuses is returned at once and nothing is sent."""
        q = self.check(by, query_text)
        if isinstance(q, InvalidPropertyQuery):
            return q
        self.ctx.scratch.pop(SCRATCH_KEY, None)
        self.ctx.in_background(self._search, q)
        return None

    def _search(self, token: int, q: PropertyQuery) -> None:
        ctx = self.ctx
        queried_at = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        try:
            answer = ctx.require_platform().search_real_estate(q.as_body())
        except VisitEnded:
            raise
        except RetryableError:
            log.warning("real-estate search: platform not reachable", exc_info=True)
            ctx.post_for(token, "property_error", message=OFFLINE_MESSAGE, offline=True)
            return
        except PermanentError as e:
            log.warning("real-estate search refused (%s)", e.code, exc_info=True)
            ctx.post_for(token, "property_error", message=str(getattr(e, "detail", "") or FAILED_MESSAGE),
                         offline=False)
            return
        except Exception:  # noqa: BLE001 - told to the citizen plainly, logged for the technician
            log.exception("real-estate search failed")
            ctx.post_for(token, "property_error", message=OFFLINE_MESSAGE, offline=True)
            return
        units = units_from_answer(answer)
        result = (q, units, queried_at, _when(str(answer.get("as_of") or "")))
        ctx.keep_for(token, SCRATCH_KEY, result)
        ctx.post_for(token, "property_results", by=q.by, value=q.value, count=len(units), units=unit_views(units),
                     message=(f"查到 {len(units)} 处不动产" if units else NOT_FOUND_MESSAGE))

    # ------------------------------------------------------------------ the slip
    def has_result(self) -> bool:
        return SCRATCH_KEY in self.ctx.scratch

    def slip_blocks(self, paper_mm: int | None = None) -> list[Any]:
        """The query slip of the visit's last search (LookupError without one)."""
        ctx = self.ctx
        if SCRATCH_KEY not in ctx.scratch:
            raise LookupError("no real-estate search in this visit")
        q, units, queried_at, as_of = ctx.scratch[SCRATCH_KEY]
        prn = ctx.printer()
        mm = paper_mm or (prn.paper_mm if prn is not None else 58)
        kiosk = ctx.config.kiosk
        slip = PropertySlip(brand=kiosk.brand, station=kiosk.station_name, by=q.by, value=q.value, units=units,
                            queried_at=queried_at, as_of=as_of)
        return compose_property_slip(slip, mm)

    def print_slip(self) -> None:
        """「打印查询单」: composed here (cheap), printed by a worker; the outcome is a ``property_printed`` event."""
        self.ctx.in_background(self._print, self.slip_blocks())

    def _print(self, token: int, blocks: list[Any]) -> None:
        print_slip(self.ctx, token, blocks, what="property", event="property_printed", texts=SLIP_TEXTS)
