"""The console's server-rendered pages (Flask Blueprint + Jinja2): login, fleet, kiosk, rollouts, commands.

A thin layer over kiosk.console.service.Console and kiosk.console.accounts; `install_pages`
wires it into the API's Flask app and returns the check the API uses to accept a
logged-in session in place of the bearer token.
"""
from __future__ import annotations

from kiosk.console.web.pages import install_pages

__all__ = ["install_pages"]
