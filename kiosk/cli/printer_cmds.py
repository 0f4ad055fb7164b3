"""`kiosk device printer ...`: test page, the ESC/POS emulator, and rendering a receipt to PNG."""
from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any, cast

import click

from devices.base import DeviceError
from devices.printer.escpos_out import blocks_to_bytes
from kiosk.bootstrap import drivers
from kiosk.cli._groups import config_option, echo_json, fail, group
from kiosk.config import ConfigError, load_config
from kiosk.domain.receipt import Receipt, ReceiptDataError, compose_receipt
from kiosk.ports.devices import ReceiptPrinterPort
from standins.escpos_parser import parse
from standins.printer_emulator import PrinterEmulator
from standins.printer_render import render_ops, split_receipts

STATUSES = ["ok", "paper-near-end", "paper-out", "cover-open", "offline", "cutter-error"]


def register(cli: click.Group) -> None:
    """Add `device printer test-page|emulate|render` to the root group (called by kiosk.cli.main)."""
    grp = group(cli, "device", "printer", help="Receipt printer (ESC/POS).")

    @grp.command("test-page")
    @config_option
    @click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
                  help="With the simulated driver: write the rendered page (PNG) here.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    def test_page(config_file: str | None, out_dir: str | None, as_json: bool) -> None:
        """Print a test page on the configured printer (exit 2 when the printer refuses)."""
        try:
            cfg = load_config(config_file)
        except ConfigError as e:
            fail(str(e))
        settings = cfg.devices.get("printer")
        params: dict[str, Any] = dict(settings.model_dump()) if settings else {"driver": "simulated"}
        params.update((settings.model_extra or {}) if settings else {})
        params["poll_status"] = False
        if out_dir:
            params["out_dir"] = out_dir
        printer = cast(ReceiptPrinterPort, drivers.create("printer", params))
        printer.open()
        try:
            res = printer.test_page()
        except DeviceError as e:
            result = {"ok": False, "code": e.code, "message": e.message, "driver": printer.driver}
            echo_json(result) if as_json else click.echo(f"{e.message} ({e.code})", err=True)
            printer.close()
            sys.exit(2)
        emu = getattr(printer, "emulator", None)
        if emu is not None:
            emu.wait_for_receipts(1, timeout=5)
        pngs = [str(r.png) for r in emu.complete_receipts if r.png] if emu is not None else []
        result = {"ok": True, "driver": printer.driver, "job_id": res.job_id, "ms": round(res.ms, 1),
                  "condition": res.condition.code, "png": pngs[0] if pngs else None}
        printer.close()
        if as_json:
            echo_json(result)
        else:
            click.echo(f"测试页已打印（{result['driver']}，{result['ms']} ms，状态 {result['condition']}）"
                       + (f"：{result['png']}" if result["png"] else ""))

    @grp.command("emulate")
    @click.option("--port", type=int, default=9100, show_default=True)
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
                  help="One PNG per cut receipt is written here.")
    @click.option("--status", type=click.Choice(STATUSES), default="ok", show_default=True,
                  help="What DLE EOT status queries are answered with.")
    @click.option("--paper", type=click.Choice(["58", "80"]), default="58", show_default=True)
    @click.option("--chinese-default", is_flag=True, help="Start in Chinese mode (like many local models).")
    def emulate(port: int, host: str, out_dir: str, status: str, paper: str, chinese_default: bool) -> None:
        """Run a 9100-style ESC/POS printer emulator until SIGTERM/SIGINT."""
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        emu = PrinterEmulator(host=host, port=port, out_dir=out_dir, status=status, paper_mm=int(paper),
                              chinese_default=chinese_default)
        try:
            emu.start()
        except OSError as e:
            fail(f"cannot listen on {host}:{port}: {e.strerror or e}")
        click.echo(f"printer emulator listening on {host}:{emu.port} status={status} out={out_dir}")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            emu.stop()
            done = len(emu.complete_receipts)
            click.echo(f"printer emulator stopped: {done} receipt(s) written")

    @grp.command("render")
    @click.argument("receipt_json", type=click.Path(exists=True, dir_okay=False))
    @click.option("--png", "png_path", type=click.Path(dir_okay=False), required=True)
    @click.option("--paper", type=click.Choice(["58", "80"]), default="58", show_default=True)
    def render(receipt_json: str, png_path: str, paper: str) -> None:
        """Compose a receipt from RECEIPT.json and render it through the emulator's renderer."""
        try:
            data = json.loads(Path(receipt_json).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            fail(f"{receipt_json}: not valid JSON ({type(e).__name__})")
        if not isinstance(data, dict):
            fail(f"{receipt_json}: expected a JSON object")
        try:
            receipt = Receipt.from_mapping(data)
        except ReceiptDataError as e:
            fail(str(e))
        paper_mm = int(paper)
        receipts, _ = split_receipts(parse(blocks_to_bytes(compose_receipt(receipt, paper_mm), paper_mm)))
        out = Path(png_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        render_ops(receipts[0], paper_mm).save(out, format="PNG")
        click.echo(str(out))
