"""The technician's tools behind their PIN gate: a hidden gesture opens it, the PIN passes it.

The gate itself (hashed PIN, lockout that survives a restart) is `kiosk.app.pin_gate`;
`PinGate` and `PinResult` are re-exported here for older imports.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

from kiosk.app.context import AppContext
from kiosk.app.errors import already_logged, logged_entry_points
from kiosk.app.pin_gate import PinGate, PinResult  # re-exported: PinGate lives in pin_gate
from kiosk.app.receipts import ReceiptService
from kiosk.app.status import StatusService
from kiosk.infra.logs import tail

log = logging.getLogger(__name__)


@logged_entry_points
class TechnicianTools:
    """What the technician screen does behind the PIN: status report, device checks, drain, reprint, log tail.

    Every tool touches a device, the network or the disk, so the screen starts it
    with `run_tool` (off the UI thread) and shows its text when the
    `technician_result` event comes back.
    """

    def __init__(self, ctx: AppContext, status: StatusService, receipts: ReceiptService) -> None:
        self.ctx = ctx
        self._status = status
        self._receipts = receipts
        ui = ctx.config.ui
        self.pin_gate = PinGate.from_config(ui, ctx.state_dir, clock=ctx.clock)  # hash + lockout on disk

    def technician_unlock(self, pin: str) -> PinResult:
        return self.pin_gate.check(pin)

    def run_tool(self, tool: str, *args: str) -> None:
        """Run one tool (report, drain, reprint, health KIND, log) off the UI thread; a `technician_result` follows."""
        tools = {"report": self.technician_report, "drain": self.drain_and_report, "reprint": self.reprint_unprinted,
                 "health": self.device_health_text, "log": self.log_tail_text}
        if tool not in tools:
            raise ValueError(f"unknown technician tool {tool!r}")
        self.ctx.in_background(self._run_tool, tool, tools[tool], args)

    def _run_tool(self, token: int, tool: str, fn: Callable[..., str], args: tuple[str, ...]) -> None:
        try:
            text = fn(*args)
        except Exception as e:  # noqa: BLE001 - the technician reads the failure; logged with its traceback
            if not already_logged(e):
                log.exception("technician tool %s failed", tool)
            text = f"操作失败：{type(e).__name__}（详见日志）"
        self.ctx.post_for(token, "technician_result", tool=tool, text=text)

    def drain_and_report(self) -> str:
        """One drain pass now, then the station report."""
        return self.drain_now() + "\n\n" + self.technician_report()

    def reprint_unprinted(self) -> str:
        """Every receipt the printer never delivered (paper ran out at night, say), oldest first."""
        pending = list(reversed(self._receipts.unprinted_receipts()))
        if not pending:
            return "没有未打印的回执"
        return "\n".join(self._receipts.reprint_receipt(r.local_no) for r in pending)

    def device_kinds(self) -> list[str]:
        return sorted(self.ctx.devices)

    def technician_report(self) -> str:
        ctx = self.ctx
        ctx.wait_ready()
        st = self._status.refresh_status()
        lines = ["设备状态："]
        for kind in sorted(set(ctx.devices) | set(st.devices)):
            dev = ctx.devices.get(kind)
            if dev is None:
                lines.append(f"  {kind}: 未安装驱动")
                continue
            last = dev.last_health
            lines.append(f"  {kind} ({dev.driver}): {dev.status.state.value} {dev.status.message}"
                         + (f"；上次检测 {last.level.value} {'通过' if last.ok else '失败'}" if last else ""))
        q = ctx.outbox.stats() if ctx.outbox else {}
        lines.append(f"队列：待提交 {q.get('pending', 0)}，提交中 {q.get('inflight', 0)}，"
                     f"失败 {q.get('failed', 0)}，已完成 {q.get('done', 0)}")
        base_url = ctx.platform.base_url if ctx.platform else "-"
        lines.append(f"平台：{'可以连接' if st.online else '无法连接'}（{base_url}）")
        unprinted = self._receipts.unprinted_receipts()
        if unprinted:
            lines.append(f"未打印的回执：{len(unprinted)} 张（" + "、".join(r.tracking_no for r in unprinted[:5])
                         + ("……" if len(unprinted) > 5 else "") + "）")
        lines.append(f"配置版本：{self.config_version()}")
        if ctx.startup_error:
            lines.insert(0, f"启动失败（{ctx.startup_error}），本机暂停服务；详见日志，修复后重启程序")
        if ctx.restart_pending:
            lines.append("待重启生效的配置：" + "、".join(ctx.restart_pending))
        return "\n".join(lines)

    def config_version(self) -> str:
        raw = json.dumps(self.ctx.config.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    def device_health_text(self, kind: str) -> str:
        dev = self.ctx.devices.get(kind)
        if dev is None:
            return f"{kind}: 未安装驱动"
        out = []
        for level in ("internal", "external"):
            r = dev.health(level, timeout=5)
            out.append(f"{kind} {level}: {'通过' if r.ok else '失败'} {r.message}")
        prn = self.ctx.printer() if kind == "printer" else None
        if prn is not None:
            try:
                prn.test_page()
                out.append("测试页已打印")
            except Exception as e:  # noqa: BLE001 - the technician reads the reason on the screen
                log.warning("test page failed", exc_info=True)
                out.append("测试页失败：" + getattr(e, "message", type(e).__name__))
        return "\n".join(out)

    def drain_now(self) -> str:
        if self.ctx.drainer is None:
            return "提交程序未运行"
        rep = self.ctx.drainer.drain_once(ignore_backoff=True)
        self._status.refresh_status()
        return f"已提交 {rep.delivered} 件，失败 {rep.failed} 件，稍后重试 {rep.retried} 件，剩余 {rep.remaining} 件"

    def log_tail_text(self, lines: int = 30) -> str:
        """The last lines of the JSON log, redacted again on the way out."""
        cfg = self.ctx.config
        path = self.ctx.log_path or cfg.resolve_path(cfg.logging.dir) / "kiosk.jsonl"
        got = tail(path, lines)
        return "\n".join(got) if got else "（暂无日志）"
