"""Legibility benchmark: can a clerk read the pages the kiosk uploads, and what does a page cost?

    .venv/bin/python -m bench.legibility [--sizes 9,10.5,12,14] [--seeds 1] [--jobs 2]

Known Chinese documents (an application form, an ID-card copy, a certificate with a red
seal) are rendered on A4 at several font sizes (down to 9 pt), photographed synthetically
by :func:`standins.camera_scenes.photograph` (8 MP document camera: perspective, shadow,
lens blur, sensor noise, the sensor's own JPEG), and each frame goes three ways:

- ``raw``: the camera frame as the sensor delivers it (the JPEG a naive kiosk would send);
- ``naive``: the page warped flat at the frame's full resolution, colour, no cleaning,
  JPEG at OpenCV's default quality 95 (the naive full-resolution pipeline);
- ``ours``: the real capture pipeline, :func:`devices.camera.pipeline.process`.

Legibility is measured by OCR (Tesseract 5 with Debian's ``chi_sim``) as the character
error rate against the known text: Levenshtein distance / reference length, after NFKC
and with whitespace removed (Tesseract spaces Chinese characters apart). Bytes are the
JPEG actually uploaded. Targets (issue 14 item 6): ours no worse than raw at 9 pt and
above, at most 250 KB per A4 page. Writes bench/results/legibility.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
RENDER_DPI = 240  # the page as printed; the camera sees it at about 180 dpi
A4_MM = (210.0, 297.0)
MAX_BYTES = 250_000
DOCUMENTS = ("form", "id_copy", "certificate")
SIZES_PT = (9.0, 10.5, 12.0, 14.0)

_PARAGRAPH = ("申请人承诺所填写的信息及提交的材料真实有效，如有虚假，愿意承担相应的法律责任。"
              "便民服务站提供社保、医保、不动产等高频事项的查询与办理，群众办事只进一门、一次办好。"
              "本人同意工作人员通过全省电子证照库调取相关证照信息，用于本次事项的审核。")


@dataclass
class Document:
    """A rendered page (BGR, A4 at RENDER_DPI) and the text on it, in reading order."""
    name: str
    size_pt: float
    image: np.ndarray
    lines: list[str]

    @property
    def text(self) -> str:
        return normalise("".join(self.lines))


def _px(pt: float) -> int:
    return int(round(pt / 72.0 * RENDER_DPI))


def _mm(mm: float) -> int:
    return int(round(mm / 25.4 * RENDER_DPI))


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    out, cur = [], ""
    for ch in text:
        if font.getlength(cur + ch) > width and cur:
            out.append(cur)
            cur = ch
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def render_document(name: str, size_pt: float) -> Document:
    """One of DOCUMENTS with its body text at ``size_pt`` (titles larger, as printed forms are)."""
    w, h = _mm(A4_MM[0]), _mm(A4_MM[1])
    img = Image.new("RGB", (w, h), (247, 245, 240))
    d = ImageDraw.Draw(img)
    body = ImageFont.truetype(FONT_PATH, _px(size_pt))
    title = ImageFont.truetype(FONT_PATH, _px(max(size_pt * 1.6, 16)))
    margin = _mm(22)
    lead = int(_px(size_pt) * 1.7)
    ink = (25, 25, 25)
    lines: list[str] = []
    y = _mm(25)

    def put(text: str, font: ImageFont.FreeTypeFont = body, x: int = margin, centre: bool = False) -> None:
        nonlocal y
        if centre:
            d.text((w // 2, y), text, font=font, fill=ink, anchor="mt")
        else:
            d.text((x, y), text, font=font, fill=ink)
        lines.append(text)
        y += int(font.size * 1.7)

    if name == "form":
        put("淄博市周村区便民服务事项申请表", title, centre=True)
        y += lead // 2
        for label, value in (("事项名称", "城乡居民基本养老保险参保登记"), ("申请人", "王秀兰"),
                             ("联系地址", "淄博市周村区北郊镇前进村三组"), ("办理方式", "自助终端申请，结果邮寄送达"),
                             ("申请日期", "2026年11月30日")):
            put(f"{label}：{value}")
        y += lead // 2
        for ln in _wrap(_PARAGRAPH, body, w - 2 * margin):
            put(ln)
        put("申请人签字：王秀兰")
    elif name == "id_copy":
        put("居民身份证复印件", title, centre=True)
        y += lead // 2
        # the card, enlarged as a copier's ID-card mode prints it (a 1.5x copy of 85.6 x 54 mm)
        cw, ch = _mm(85.6 * 1.5), _mm(54 * 1.5)
        x0 = (w - cw) // 2
        d.rounded_rectangle([x0, y, x0 + cw, y + ch], radius=_mm(5), outline=(60, 60, 60), width=3)
        d.rectangle([x0 + cw - _mm(38), y + _mm(12), x0 + cw - _mm(8), y + _mm(50)], fill=(200, 200, 200))
        y += _mm(8)
        for ln in ("姓名 张桂芳", "性别 女 民族 汉", "出生 1958年3月12日", "住址 山东省淄博市周村区",
                   "城北路街道办事处福山村", "公民身份号码 370306195803120026"):
            put(ln, x=x0 + _mm(8))
        y = max(y, 0) + _mm(14)
        for ln in _wrap("此复印件仅供办理城乡居民基本养老保险参保登记使用，再次复印无效。", body, w - 2 * margin):
            put(ln)
    elif name == "certificate":
        put("证明", title, centre=True)
        y += lead // 2
        for ln in _wrap("兹证明张桂芳同志，女，系我村村民，现居住于周村区城北路街道福山村，"
                        "家庭成员三人，无固定收入来源，情况属实。" + _PARAGRAPH, body, w - 2 * margin):
            put(ln)
        y += lead
        put("特此证明。")
        y += lead
        put("周村区城北路街道福山村民委员会", x=w - margin - int(body.getlength("周村区城北路街道福山村民委员会")))
        put("2026年11月27日", x=w - margin - int(body.getlength("2026年11月27日")))
        # a red seal over the signature lines, as certificates are stamped
        cx, cy, r = w - margin - _mm(30), y - _mm(12), _mm(21)
        seal = Image.new("RGBA", img.size, (0, 0, 0, 0))
        sd = ImageDraw.Draw(seal)
        sd.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(215, 25, 25, 200), width=_mm(1.6))
        sd.text((cx, cy), "★", font=ImageFont.truetype(FONT_PATH, _mm(16)), fill=(215, 25, 25, 200), anchor="mm")
        img = Image.alpha_composite(img.convert("RGBA"), seal).convert("RGB")
    else:
        raise ValueError(f"unknown document {name!r}")
    return Document(name, size_pt, np.ascontiguousarray(np.asarray(img)[:, :, ::-1]), lines)


# ---------------------------------------------------------------------------------- measuring
def normalise(text: str) -> str:
    """NFKC (full-width punctuation and digits fold to one form), whitespace removed."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def levenshtein(a: Sequence[str], b: Sequence[str]) -> int:
    """Edit distance (insertions, deletions, substitutions), two rows."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: edit distance / reference length (both normalised)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    return levenshtein(ref, hyp) / max(1, len(ref))


def tesseract_available() -> bool:
    if shutil.which("tesseract") is None:
        return False
    out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=False)
    return "chi_sim" in out.stdout.split()


def ocr(image: np.ndarray | bytes, psm: int = 3) -> str:
    """Tesseract's chi_sim reading of an image (array or encoded bytes), one thread."""
    with tempfile.TemporaryDirectory(prefix="legibility-") as tmp:
        path = Path(tmp) / "page.png"
        if isinstance(image, (bytes, bytearray)):
            path = Path(tmp) / "page.jpg"
            path.write_bytes(image)
        else:
            cv2.imwrite(str(path), image)
        env = dict(os.environ, OMP_THREAD_LIMIT="1")
        res = subprocess.run(["tesseract", str(path), "stdout", "-l", "chi_sim", "--psm", str(psm)],
                             capture_output=True, text=True, env=env, check=True)
        return res.stdout


# ------------------------------------------------------------------------------- the three ways
def encode(img: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def naive_full_resolution(frame: np.ndarray, corners: np.ndarray) -> bytes:
    """The page warped flat at the frame's own resolution, colour, JPEG at cv2's default 95."""
    from devices.camera.pipeline import warp_document

    return encode(warp_document(frame, corners), 95)


def _one(job: tuple[str, float, int]) -> list[dict[str, Any]]:
    from devices.camera.pipeline import process
    from standins.camera_scenes import photograph

    name, size_pt, seed = job
    doc = render_document(name, size_pt)
    shot = photograph(doc.image, seed=seed)
    raw = encode(shot.image, 90)  # what the sensor hands over (photograph() already went through it)
    t0 = time.perf_counter()
    r = process(shot.image)
    pipe_ms = (time.perf_counter() - t0) * 1000
    if r.jpeg is None or r.corners is None:
        ours: bytes | None = None
        naive = naive_full_resolution(shot.image, shot.corners)
    else:
        ours = r.jpeg
        naive = naive_full_resolution(shot.image, r.corners)
    rows = []
    for way, data in (("raw", raw), ("naive", naive), ("ours", ours)):
        row: dict[str, Any] = {"document": name, "size_pt": size_pt, "seed": seed, "way": way}
        if data is None:
            row.update(cer=1.0, bytes=None, problems=[p.code for p in r.problems])
        else:
            t = time.perf_counter()
            hyp = ocr(data)
            dims = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).shape
            row.update(cer=round(cer(doc.text, hyp), 4), bytes=len(data), px=[int(dims[1]), int(dims[0])],
                       ocr_s=round(time.perf_counter() - t, 2), ref_chars=len(doc.text))
            if way == "ours":
                row.update(pipeline_ms=round(pipe_ms, 1), ok=r.ok, colour=r.colour, jpeg_quality=r.jpeg_quality,
                           problems=[p.code for p in r.problems])
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES_PT))
    ap.add_argument("--documents", default=",".join(DOCUMENTS))
    ap.add_argument("--seeds", type=int, default=1, help="photographs per document and size")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "legibility.json"))
    args = ap.parse_args()
    if not tesseract_available():
        raise SystemExit("tesseract with chi_sim is needed: ./scripts/setup.sh installs tesseract-ocr-chi-sim")
    sizes = [float(s) for s in args.sizes.split(",")]
    docs = args.documents.split(",")
    jobs = [(d, s, 200 + k) for d in docs for s in sizes for k in range(args.seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as ex:
        rows = [row for chunk in ex.map(_one, jobs) for row in chunk]
    elapsed = time.perf_counter() - t0

    def pick(way: str, **kw: Any) -> list[dict[str, Any]]:
        return [r for r in rows if r["way"] == way and all(r[k] == v for k, v in kw.items())]

    print(f"legibility: {len(docs)} documents x {len(sizes)} sizes x {args.seeds} photographs, "
          f"3264x2448 frames, tesseract chi_sim ({elapsed:.0f} s)")
    print(f"{'document':12} {'pt':>5} | {'raw CER':>8} {'KB':>6} | {'naive CER':>9} {'KB':>6} | "
          f"{'ours CER':>8} {'KB':>6} {'q':>3}  met")
    table = []
    for d in docs:
        for s in sizes:
            cell: dict[str, Any] = {"document": d, "size_pt": s}
            for way in ("raw", "naive", "ours"):
                rs = pick(way, document=d, size_pt=s)
                cell[way] = {"cer": round(statistics.mean(r["cer"] for r in rs), 4),
                             "kb": round(statistics.mean(r["bytes"] or 0 for r in rs) / 1000, 1),
                             "kb_max": round(max(r["bytes"] or 0 for r in rs) / 1000, 1)}
            ours_rows = pick("ours", document=d, size_pt=s)
            cell["ours"]["jpeg_quality"] = [r.get("jpeg_quality") for r in ours_rows]
            cell["met"] = (cell["ours"]["cer"] <= cell["raw"]["cer"] + 1e-9
                           and cell["ours"]["kb_max"] * 1000 <= MAX_BYTES)
            table.append(cell)
            o = cell["ours"]
            print(f"{d:12} {s:5.1f} | {cell['raw']['cer']:8.3f} {cell['raw']['kb']:6.0f} | "
                  f"{cell['naive']['cer']:9.3f} {cell['naive']['kb']:6.0f} | {o['cer']:8.3f} {o['kb']:6.0f} "
                  f"{o['jpeg_quality'][0] or 0:3d}  {'yes' if cell['met'] else 'NO'}")
    summary = {way: {"cer_mean": round(statistics.mean(r["cer"] for r in pick(way)), 4),
                     "kb_mean": round(statistics.mean(r["bytes"] or 0 for r in pick(way)) / 1000, 1),
                     "kb_max": round(max(r["bytes"] or 0 for r in pick(way)) / 1000, 1)}
               for way in ("raw", "naive", "ours")}
    all_met = all(c["met"] for c in table)
    for way, v in summary.items():
        print(f"{way:6} mean CER {v['cer_mean']:.3f}, mean {v['kb_mean']:.0f} KB, max {v['kb_max']:.0f} KB")
    print(f"target (ours CER <= raw CER at every size >= 9 pt, <= {MAX_BYTES // 1000} KB per page): "
          f"{'met' if all_met else 'NOT met'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "frame": [3264, 2448],
                               "render_dpi": RENDER_DPI, "max_bytes": MAX_BYTES, "elapsed_s": round(elapsed, 1),
                               "table": table, "summary": summary, "target_met": all_met, "rows": rows},
                              ensure_ascii=False, indent=2))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
