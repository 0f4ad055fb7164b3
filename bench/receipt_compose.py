"""Receipt composition benchmark: layout blocks, ESC/POS bytes and the emulator's PNG, per receipt.

    .venv/bin/python -m bench.receipt_compose [--n 300]

Ours: kiosk.domain.receipt.compose_receipt (width-aware wrapping, 禁则, masking) and
devices.printer.escpos_out (GB18030 in Chinese mode via python-escpos).
Baselines in the same run: a naive template wrapped with textwrap (counts
characters, not columns: lines overflow the paper, counted below) and
python-escpos's own text path (MagicEncode) for the same lines.
Writes bench/results/receipt_compose-<time>.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _receipts(n: int):
    from kiosk.domain.receipt import Receipt
    from kiosk.domain.tracking import new_tracking_no

    items = ["城乡居民基本养老保险参保登记（含变更、注销等业务的办理）", "居民医保参保登记",
             "灵活就业人员社保缴费基数申报", "不动产登记资料查询", "高龄津贴申请"]
    out = []
    for i in range(n):
        out.append(Receipt(station="周村区城北路街道便民服务站", item=items[i % len(items)], applicant_name="张三丰",
                           applicant_id="370306199001011234", tracking_no=new_tracking_no("LQ", dt.date(2026, 11, 27)),
                           submitted_at=dt.datetime(2026, 11, 27, 9, i % 60), promised_date=dt.date(2026, 12, 4),
                           promised_text="5个工作日", queued=bool(i % 2)))
    return out


def naive_compose(r, cols: int) -> list[str]:
    lines = [r.brand, r.station, "自助服务回执", "-" * cols, f"办理事项：{r.item}", f"申请人：{r.applicant_name[0]}**",
             f"办件编号：{r.tracking_no}", f"提交时间：{r.submitted_at:%Y-%m-%d %H:%M}", f"承诺办结：{r.promised_date}"]
    if r.queued:
        lines.append("网络恢复后自动提交，凭此单查询进度")
    out: list[str] = []
    for line in lines:
        out.extend(textwrap.wrap(line, cols) or [""])
    return out


def _timed(fn, items) -> list[float]:
    ts = []
    for it in items:
        t0 = time.perf_counter()
        fn(it)
        ts.append((time.perf_counter() - t0) * 1e6)
    return ts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()

    from escpos.printer import Dummy

    from devices.printer.escpos_out import blocks_to_bytes
    from kiosk.domain.receipt import Line, compose_receipt, text_width
    from standins.escpos_parser import parse
    from standins.printer_render import render_ops, split_receipts

    receipts = _receipts(args.n)
    results: dict[str, dict] = {}
    print(f"receipt composition, {args.n} receipts, median per receipt")
    print(f"{'paper':6} {'step':34} {'baseline us':>12} {'ours us':>10} {'ratio':>7}  note")
    for paper, cols in ((58, 32), (80, 48)):
        compose_receipt(receipts[0], paper)  # warm up
        ours = _timed(lambda r: compose_receipt(r, paper), receipts)
        base = _timed(lambda r: naive_compose(r, cols), receipts)
        overflow = sum(sum(1 for x in naive_compose(r, cols) if text_width(x) > cols) for r in receipts) / len(receipts)
        ours_overflow = sum(sum(1 for b in compose_receipt(r, paper) if isinstance(b, Line)
                                and text_width(b.text) > cols // b.scale) for r in receipts)
        blocks = [compose_receipt(r, paper) for r in receipts]
        to_bytes = _timed(lambda b: blocks_to_bytes(b, paper), blocks)

        def magic(b):  # the same python-escpos calls, text through its MagicEncode path
            from kiosk.domain.receipt import Cut, Qr

            d = Dummy()
            d.hw("INIT")
            for blk in b:
                if isinstance(blk, Line):
                    d.set(align=blk.align, bold=blk.bold)
                    d.text(blk.text + "\n")
                elif isinstance(blk, Qr):
                    d.qr(blk.data, native=True, size=blk.module)
                elif isinstance(blk, Cut):
                    d.cut()
            return d.output
        magic_t = _timed(magic, blocks)
        data = [blocks_to_bytes(b, paper) for b in blocks[:30]]
        render_t = _timed(lambda d: render_ops(split_receipts(parse(d))[0][0], paper), data)
        med = statistics.median
        rows = [
            ("compose (blocks)", med(base), med(ours),
             f"naive overflows {overflow:.1f} lines/receipt; ours {ours_overflow}"),
            ("to ESC/POS bytes", med(magic_t), med(to_bytes), "baseline: python-escpos text() MagicEncode"),
            ("parse + render PNG (emulator)", None, med(render_t), "30 receipts"),
        ]
        for name, b, o, note in rows:
            bs = f"{b:12.1f}" if b is not None else f"{'-':>12}"
            ratio = f"{b / o:6.2f}x" if b else f"{'':>7}"
            print(f"{paper:<6} {name:34} {bs} {o:10.1f} {ratio}  {note}")
        results[str(paper)] = {"compose_us": med(ours), "naive_compose_us": med(base), "naive_overflow_lines": overflow,
                               "ours_overflow_lines": ours_overflow, "bytes_us": med(to_bytes),
                               "magicencode_us": med(magic_t), "render_us": med(render_t)}
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"receipt_compose-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"n": args.n, "results": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
