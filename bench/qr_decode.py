"""QR decoding benchmark: zxing-cpp, pyzbar and our camera path on the same hard frames.

    .venv/bin/python -m bench.qr_decode [--frames 80] [--seed 7]

Frames are generated at 1280x720 and 1920x1080: a QR code (our receipt payload or
a long opaque token) of random size and position on a textured background, then
rotation, blur, sensor noise, low contrast and glare, each at a random strength.
Every decoder sees every frame (grayscale, as the camera path gets it). A decode
counts only when the text is exactly right; wrong text is counted separately.
Target: ours decodes at least as many frames as pyzbar, at most 1/3 of pyzbar's
median time. Prints a table and writes bench/results/qr_decode-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from devices.qr.decoders import QrImageDecoder, decode_pyzbar, decode_zxing

ROOT = Path(__file__).resolve().parent.parent
SIZES = [(1280, 720), (1920, 1080)]


def _code_image(text: str) -> np.ndarray:
    import qrcode
    q = qrcode.QRCode(box_size=1, border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
    q.add_data(text)
    q.make()
    return np.array(q.make_image().convert("L"), dtype=np.uint8)


def make_frame(rng: np.random.Generator, size: tuple[int, int], text: str) -> tuple[np.ndarray, dict]:
    w, h = size
    # textured background: gradient + blotches, like a shop counter behind a phone
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bg = 110 + 60 * np.sin(xx / rng.uniform(80, 300)) * np.cos(yy / rng.uniform(80, 300))
    bg += rng.normal(0, 12, (h // 16 + 1, w // 16 + 1)).repeat(16, 0).repeat(16, 1)[:h, :w]
    frame = np.clip(bg, 0, 255).astype(np.float32)

    code = _code_image(text)
    side = int(h * rng.uniform(0.22, 0.6))
    code = cv2.resize(code, (side, side), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    angle = float(rng.uniform(-35, 35))
    pad = int(side * 0.25)
    canvas = np.full((side + 2 * pad, side + 2 * pad), 255, np.float32)
    canvas[pad:pad + side, pad:pad + side] = code
    mask = np.zeros_like(canvas)
    mask[pad // 2:-pad // 2 or None, pad // 2:-pad // 2 or None] = 1  # a white card around the code
    m = cv2.getRotationMatrix2D((canvas.shape[1] / 2, canvas.shape[0] / 2), angle, 1.0)
    canvas = cv2.warpAffine(canvas, m, canvas.shape[::-1], flags=cv2.INTER_LINEAR, borderValue=0)
    mask = cv2.warpAffine(mask, m, mask.shape[::-1], flags=cv2.INTER_NEAREST, borderValue=0)
    ch, cw = canvas.shape
    x = int(rng.integers(0, max(1, w - cw)))
    y = int(rng.integers(0, max(1, h - ch)))
    region = frame[y:y + ch, x:x + cw]
    ch, cw = region.shape
    region[:] = np.where(mask[:ch, :cw] > 0, canvas[:ch, :cw], region)

    # low contrast
    contrast = float(rng.uniform(0.35, 1.0))
    frame = 128 + (frame - 128) * contrast
    # glare: a bright soft ellipse somewhere, sometimes over the code
    glare = float(rng.uniform(0, 120))
    gx, gy = rng.uniform(0, w), rng.uniform(0, h)
    rad = rng.uniform(0.1, 0.35) * w
    frame += glare * np.exp(-(((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * rad ** 2)))
    # blur
    sigma = float(rng.uniform(0, 2.2))
    if sigma > 0.3:
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    # sensor noise
    noise = float(rng.uniform(0, 22))
    frame += rng.normal(0, noise, frame.shape)
    gray = np.clip(frame, 0, 255).astype(np.uint8)
    return gray, {"angle": round(angle, 1), "side": side, "contrast": round(contrast, 2), "glare": round(glare),
                  "blur": round(sigma, 2), "noise": round(noise, 1)}


def payload(rng: np.random.Generator, i: int) -> str:
    if i % 2 == 0:
        from kiosk.domain.tracking import new_tracking_no, qr_payload
        return qr_payload(new_tracking_no("LQ"))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    return "".join(alphabet[j] for j in rng.integers(0, len(alphabet), int(rng.integers(60, 160))))


def run(frames_per_size: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    ours = QrImageDecoder("zxing")
    decoders = {
        "pyzbar": decode_pyzbar,
        "zxing-cpp": decode_zxing,
        "ours": ours.decode,
    }
    results: dict = {"frames_per_size": frames_per_size, "seed": seed, "sizes": {}}
    for size in SIZES:
        frames = []
        for i in range(frames_per_size):
            text = payload(rng, i)
            g, params = make_frame(rng, size, text)
            frames.append((g, text, params))
        per: dict = {}
        for name, fn in decoders.items():
            times, ok, wrong = [], 0, 0
            for g, text, _ in frames:
                if name == "ours":
                    ours._last_rect = None  # independent frames: no help from a previous hit
                t0 = time.perf_counter()
                got = fn(g)
                times.append((time.perf_counter() - t0) * 1000)
                texts = [d.text for d in got]
                if text in texts:
                    ok += 1
                if any(t != text for t in texts):
                    wrong += 1
            per[name] = {"decoded": ok, "rate": ok / len(frames), "wrong": wrong,
                         "median_ms": statistics.median(times), "p90_ms": sorted(times)[int(0.9 * len(times)) - 1]}
        per["ratio_ours_vs_pyzbar"] = {
            "decoded": per["ours"]["decoded"] / max(1, per["pyzbar"]["decoded"]),
            "median_time": per["ours"]["median_ms"] / per["pyzbar"]["median_ms"],
        }
        per["target_met"] = (per["ours"]["decoded"] >= per["pyzbar"]["decoded"]
                             and per["ours"]["median_ms"] <= per["pyzbar"]["median_ms"] / 3)
        results["sizes"][f"{size[0]}x{size[1]}"] = per
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=80, help="frames per resolution")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    res = run(args.frames, args.seed)
    print(f"QR decode, {args.frames} frames per size (rotation, blur, noise, low contrast, glare)")
    print(f"{'size':<10} {'decoder':<10} {'decoded':>9} {'wrong':>6} {'median ms':>10} {'p90 ms':>8}")
    for size, per in res["sizes"].items():
        for name in ("pyzbar", "zxing-cpp", "ours"):
            r = per[name]
            print(f"{size:<10} {name:<10} {r['decoded']:>4} {r['rate']:>4.0%} {r['wrong']:>6} "
                  f"{r['median_ms']:>10.1f} {r['p90_ms']:>8.1f}")
        ratio = per["ratio_ours_vs_pyzbar"]
        print(f"{size:<10} ours/pyzbar: decoded x{ratio['decoded']:.2f}, median time x{ratio['median_time']:.2f}"
              f"  -> target {'met' if per['target_met'] else 'NOT met'}")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"qr_decode-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(res, indent=2))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
