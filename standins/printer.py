"""The simulated printer: the real network driver talking to an in-process ESC/POS emulator.

Nothing is faked above the socket: the same bytes, status queries and faults as a
real 9100 printer. Settings: ``out_dir`` (one PNG per receipt; none keeps them in
memory), ``status`` (initial condition, e.g. "paper-out"), ``port`` (0 = any free).
"""
from __future__ import annotations

from typing import Any

from devices.printer.adapter import ReceiptPrinter
from standins.printer_emulator import PrinterEmulator

__all__ = ["SimulatedReceiptPrinter"]


class SimulatedReceiptPrinter(ReceiptPrinter):
    driver = "simulated"
    transport_name = "escpos-network"

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.emulator = PrinterEmulator(host="127.0.0.1", port=int(self.param("emulator_port", 0)),
                                        out_dir=self.param("out_dir"), status=str(self.param("status", "ok")),
                                        paper_mm=self.paper_mm)
        self.emulator.start()
        self.settings["host"] = "127.0.0.1"
        self.settings["port"] = self.emulator.port

    def close(self) -> None:
        super().close()
        self.emulator.stop()
