"""The application services: what the screens talk to.

`Kiosk` (kiosk.app.services) groups small typed services over one `AppContext`
(kiosk.app.context): status, catalog views, mode, visit, identify, materials,
receipts, progress, certificates, payments, help and technician tools. They hold
ports (kiosk.ports), never concrete adapters; kiosk.bootstrap.app builds those.
No Kivy here: the same services drive the demo, the tests and the real kiosk.
"""
from kiosk.app.events import UiEvent, UiEventQueue

__all__ = ["UiEvent", "UiEventQueue"]
