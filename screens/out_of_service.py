"""Out of service: which flows still work when a device is down; a calm page when nothing works."""
from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, StringProperty

from screens.base import KioskScreen

DEVICE_NAMES = {"idcard": "身份证读卡器", "qr": "扫码器", "camera": "材料拍摄仪", "printer": "打印机",
                "sscard": "社保卡读卡器"}


class OutOfServiceScreen(KioskScreen):
    prompt = "很抱歉，这项业务暂时不能办理。"
    headline = StringProperty("")
    message = StringProperty("")
    everything_down = BooleanProperty(False)

    def enter(self, missing: list[str] | None = None, wanted: str = "", startup_failed: bool = False,
              **params: Any) -> None:
        svc = self.service
        phone = svc.ctx.config.kiosk.helper_phone or svc.ctx.config.kiosk.service_phone
        # start-up failed (the queue could not open, say): nothing can be done here until the restart
        self.everything_down = startup_failed or bool(svc.lifecycle.startup_error) or svc.station.everything_down()
        if self.everything_down:
            self.headline = "自助机正在维护"
            self.message = f"很抱歉，自助机暂时不能使用。\n请拨打 {phone}，工作人员会帮您办理。"
            return
        names = "、".join(DEVICE_NAMES.get(k, k) for k in (missing or []))
        still = svc.station.working_flows_text()
        self.headline = "这项业务暂时不能办理"
        self.message = f"{names}暂时不能使用。\n现在还可以：{still}\n需要帮忙请拨打 {phone}。"
