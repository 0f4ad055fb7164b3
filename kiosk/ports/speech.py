"""Spoken prompts as the application sees them; kiosk.infra.speech has the backends."""
from __future__ import annotations

from typing import Protocol

__all__ = ["SpeechBackend"]


class SpeechBackend(Protocol):
    name: str

    def say(self, text: str, key: str | None = None) -> None: ...

    def stop(self) -> None: ...
