"""Standard or elderly mode (适老化) and the spoken prompts that go with it."""
from __future__ import annotations

from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points


@logged_entry_points
class ModeService:
    """Elderly mode: bigger type, fewer items per page, longer timeouts, prompts always spoken."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @property
    def elderly(self) -> bool:
        return self.ctx.elderly

    def set_elderly(self, on: bool) -> None:
        ctx = self.ctx
        ctx.elderly = bool(on)
        ctx.session.set_timeouts(ctx.timeout_for(ctx.elderly), ctx.config.ui.idle_warning_s)
        if on:
            self.say("长辈版已打开，字更大，时间更长", key="elderly_on")
        else:
            self.say("已切换到标准版", key="elderly_off")

    @property
    def items_per_page(self) -> int:
        ui = self.ctx.config.ui
        return ui.elderly_items_per_page if self.ctx.elderly else ui.items_per_page

    @property
    def idle_timeout_s(self) -> float:
        return self.ctx.timeout_for(self.ctx.elderly)

    def say(self, text: str, key: str | None = None) -> None:
        """Spoken prompt: always in elderly mode, otherwise when `[ui] voice` is on."""
        if self.ctx.elderly or self.ctx.config.ui.voice:
            self.ctx.speech.say(text, key)
