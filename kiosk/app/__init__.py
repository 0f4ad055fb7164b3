"""The application service: the one object the screens talk to.

It wires configuration, catalog, the visit session, the devices, the outbox and
its drainer, the platform client (and the embedded platform simulator when
asked) and the printer, and hands device events to the UI through a queue.
No Kivy here: the same service drives the demo, the tests and the real kiosk.
"""
from kiosk.app.events import UiEvent, UiEventQueue

__all__ = ["UiEvent", "UiEventQueue"]
