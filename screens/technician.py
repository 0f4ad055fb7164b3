"""Technician mode: hidden gesture + PIN; device health, queue, platform, config version, log tail, restart.

Every tool touches a device, the network or the disk: the screen starts it off
the UI thread (`technician.run_tool`) and shows its text when the
`technician_result` event arrives, so a slow drain never freezes the kiosk.
"""
from __future__ import annotations

import functools
from typing import Any

from kivy.properties import BooleanProperty, ObjectProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen
from screens.widgets import DIGITS, KButton, apply_key


class TechnicianScreen(KioskScreen):
    unlocked = BooleanProperty(False)
    pin = StringProperty("")
    message = StringProperty("")
    report = StringProperty("")
    keypad = ObjectProperty(None)
    actions = ObjectProperty(None)
    busy = StringProperty("")  # the tool running now ("" when none)

    def on_kv_post(self, base_widget: Any) -> None:
        self.keypad.keys = [k for k in DIGITS if k[1] != "X"] + [("确定", "OK")]
        self.keypad.on_key = self._key

    def enter(self, **params: Any) -> None:
        self.unlocked = False
        self.pin = ""
        self.report = ""
        gate = self.service.technician.pin_gate
        self.message = (f"已锁定，请 {int(gate.lockout_remaining() // 60) + 1} 分钟后再试"
                        if gate.locked() else "技术人员请输入密码")

    def leave(self) -> None:
        self.unlocked = False
        self.pin = ""

    def _key(self, key: str) -> None:
        if key == "OK":
            self.submit_pin()
            return
        self.pin = apply_key(self.pin, key, 12)

    def submit_pin(self) -> None:
        result = self.service.technician.technician_unlock(self.pin)
        self.pin = ""
        if result == "ok":
            self.unlocked = True
            self.message = "技术人员模式"
            self._build_actions()
            self.refresh()
        elif result == "locked":
            self.message = "密码错误次数太多，已锁定 %d 分钟" % (self.service.ctx.config.ui.technician_lockout_s // 60)
        elif result == "disabled":
            self.message = "本机未设置技术人员密码"
        else:
            self.message = "密码错误，还可以试 %d 次" % self.service.technician.pin_gate.attempts_left()

    def _build_actions(self) -> None:
        self.actions.clear_widgets()
        specs = [("刷新状态", "tech-refresh", self.refresh), ("立即提交队列", "tech-drain", self.drain),
                 ("补打回执", "tech-reprint", self.reprint)]
        for kind in self.service.technician.device_kinds():
            specs.append((f"检测 {kind}", f"tech-health-{kind}", functools.partial(self.health, kind)))
        specs += [("查看日志", "tech-log", self.show_log), ("重启程序", "tech-restart", self.restart),
                  ("退出", "tech-exit", lambda: self.app.home(end_visit=True))]
        for text, key, fn in specs:
            b = KButton(text=text, key=key, style="secondary")
            b.bind(on_release=lambda _b, f=fn: f())
            self.actions.add_widget(b)

    def _run(self, tool: str, working: str, *args: str) -> None:
        """Start a tool off the UI thread; its text arrives as a `technician_result` event."""
        self.busy = tool
        self.report = working
        self.service.technician.run_tool(tool, *args)

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "technician_result" and self.unlocked:
            self.busy = ""
            self.report = str(ev.data.get("text", ""))

    def refresh(self) -> None:
        self._run("report", "正在检查……")

    def drain(self) -> None:
        self._run("drain", "正在提交队列……")

    def reprint(self) -> None:
        """Every receipt the printer never delivered (paper ran out at night, say), oldest first."""
        self._run("reprint", "正在补打回执……")

    def health(self, kind: str) -> None:
        self._run("health", f"正在检测 {kind}……", kind)

    def show_log(self) -> None:
        self._run("log", "正在读取日志……")

    def restart(self) -> None:
        self.app.recover()
