"""What every screen has: access to the service, an `enter(**params)` hook, a wipe, a spoken prompt."""
from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.uix.screenmanager import Screen

from kiosk.app.events import UiEvent
from kiosk.app.services import Kiosk
from screens.shown_text import render_stale_in


class KioskScreen(Screen):
    """Behaviour of one screen; its layout is in kv/<name>.kv."""

    #: spoken when the screen opens (elderly mode always, otherwise when voice is on)
    prompt: str = ""
    #: device kinds this screen cannot work without (out-of-service handling)
    needs: tuple[str, ...] = ()
    #: whether the screen shows or holds personal data (wiped when the visit ends)
    personal: bool = False

    @property
    def app(self) -> Any:
        return App.get_running_app()

    @property
    def service(self) -> Kiosk:
        """The kiosk's services: `service.visit`, `service.mode`, `service.browse`, ... (kiosk.app.services)."""
        service: Kiosk = self.app.service
        return service

    def on_pre_enter(self, *_: Any) -> None:
        render_stale_in(self)  # labels left stale while hidden (a mode switch) are drawn before the first frame

    def enter(self, **params: Any) -> None:
        """Called before the screen becomes current, with the navigation parameters."""

    def leave(self) -> None:
        """Called when another screen becomes current."""

    def wipe(self) -> None:
        """Drop everything personal this screen shows (the visit ended or timed out)."""

    def on_service_event(self, ev: UiEvent) -> None:
        """A device or background event while this screen is current."""

    def refresh_mode(self) -> None:
        """Elderly mode switched: re-page lists etc."""
