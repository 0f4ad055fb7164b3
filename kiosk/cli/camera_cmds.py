"""`kiosk device camera ...`: run the document pipeline or the face check on image files.

Exit codes: 0 the picture passed the quality gate, 1 it did not (the problems say
why; a page that could be flattened is still written), 2 the input could not be read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kiosk.cli._groups import config_option, echo_json, fail, group
from kiosk.config import ConfigError, load_config


def _camera_settings(config_file: str | None) -> dict[str, Any]:
    """The [devices.camera] settings of the configuration (exit 2 when it does not load)."""
    try:
        cfg = load_config(config_file)
    except ConfigError as e:
        fail(str(e), 2)
    s = cfg.devices.get("camera")
    if s is None:
        return {}
    d = dict(s.model_dump())
    d.update(s.model_extra or {})
    return d


def _read_image(path: str) -> Any:
    """IMAGE as a BGR array, or exit 2 when OpenCV cannot read it."""
    import cv2  # noqa: PLC0415 - OpenCV takes ~0.3 s to import; only the camera commands need it
    import numpy as np  # noqa: PLC0415 - comes with OpenCV; only the camera commands need it

    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        fail(f"{path}: not an image OpenCV can read", 2)
    return img


def register(cli: click.Group) -> None:
    """Add `device camera scan|pdf|face` to the root group (called by kiosk.cli.main)."""
    grp = group(cli, "device", "camera", help="Document camera (高拍仪) and face capture.")

    @grp.command("scan")
    @click.argument("image", type=click.Path(exists=True, dir_okay=False))
    @click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="Processed page (JPEG).")
    @click.option("--json", "as_json", is_flag=True, help="Print {ok, problems, corners, ms} as JSON.")
    @click.option("--mode", type=click.Choice(["auto", "text", "colour"]), default=None,
                  help="Force grayscale text or colour output (default from config: auto).")
    @config_option
    def scan(image: str, out_path: str, as_json: bool, mode: str | None, config_file: str | None) -> None:
        """Run the document pipeline on IMAGE and write the flattened page to OUT."""
        from devices.camera.pipeline import PipelineSettings, process  # noqa: PLC0415 - imports OpenCV/numpy

        settings = _camera_settings(config_file)
        if mode:
            settings["mode"] = mode
        try:
            ps = PipelineSettings.from_settings(settings)
        except ValueError as e:
            fail(f"camera settings: {e}", 2)
        res = process(_read_image(image), ps)
        if res.jpeg is not None:
            out = Path(out_path)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(res.jpeg)
        summary = res.summary()
        summary["out"] = out_path if res.jpeg is not None else None
        if as_json:
            echo_json(summary)
        else:
            if res.ok:
                click.echo(f"ok: {out_path} ({summary['size'][0]}x{summary['size'][1]}, "
                           f"{summary['jpeg_bytes'] // 1000} KB, {summary['ms']} ms)")
            for p in res.problems:
                click.echo(f"{p.code}: {p.message}")
        raise SystemExit(0 if res.ok else 1)

    @grp.command("pdf")
    @click.argument("pages", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
    @click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True)
    @click.option("--dpi", type=int, default=200, show_default=True)
    def pdf(pages: tuple[str, ...], out_path: str, dpi: int) -> None:
        """Join processed pages (JPEG) of one material into one PDF."""
        from devices.camera.pipeline import pages_to_pdf  # noqa: PLC0415 - imports OpenCV/numpy

        data = [Path(p).read_bytes() for p in pages]
        try:
            out = pages_to_pdf(data, dpi=dpi)
        except (OSError, ValueError) as e:
            fail(f"cannot make the PDF: {type(e).__name__}", 2)
        Path(out_path).write_bytes(out)
        click.echo(f"{out_path}: {len(pages)} page(s)")

    @grp.command("face")
    @click.argument("image", type=click.Path(exists=True, dir_okay=False))
    @click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="Face crop (JPEG).")
    @click.option("--json", "as_json", is_flag=True)
    @config_option
    def face(image: str, out_path: str | None, as_json: bool, config_file: str | None) -> None:
        """Check IMAGE for exactly one frontal, centred, sharp face (certify items)."""
        from devices.camera.face import (  # noqa: PLC0415 - imports OpenCV/numpy
            FaceSettings,
            FaceUnavailable,
            check_face,
        )

        try:
            res = check_face(_read_image(image), FaceSettings.from_settings(_camera_settings(config_file)))
        except FaceUnavailable as e:
            fail(e.message, 2)
        if out_path and res.crop_jpeg is not None:
            Path(out_path).write_bytes(res.crop_jpeg)
        if as_json:
            echo_json(res.summary())
        else:
            click.echo("ok" if res.ok else "\n".join(f"{p.code}: {p.message}" for p in res.problems))
        raise SystemExit(0 if res.ok else 1)
