"""Errors are never swallowed: every public service method logs an exception with its traceback.

`logged_entry_points` wraps the public methods of an application service: an
exception inside one is logged (the logging layer redacts personal data) and
then propagates as before, so a screen's recovery still happens and nothing
vanishes on its way up. Background work gets the same from
`AppContext.in_background`.
"""
from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from kiosk.domain.session import VisitEnded

log = logging.getLogger("kiosk.app")

C = TypeVar("C", bound=type)

#: set on an exception once it has been logged with its traceback (the UI's handler need not repeat it)
LOGGED_FLAG = "_kiosk_logged"


def mark_logged(exc: BaseException) -> None:
    try:
        setattr(exc, LOGGED_FLAG, True)
    except (AttributeError, TypeError):  # an exception type that takes no attributes: it only logs twice
        pass


def already_logged(exc: BaseException) -> bool:
    return bool(getattr(exc, LOGGED_FLAG, False))


def _logged(owner: str, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def entry(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VisitEnded:
            log.debug("%s.%s: its visit has ended", owner, name)
            raise
        except Exception as e:
            if not already_logged(e):
                log.exception("%s.%s failed", owner, name)
                mark_logged(e)
            raise

    setattr(entry, "__kiosk_entry_point__", True)  # noqa: B010 - a marker the tests look for
    return entry


def logged_entry_points(cls: C) -> C:
    """Class decorator: every public method (not properties) logs its exception with the traceback."""
    for name, attr in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(attr):
            continue
        setattr(cls, name, _logged(cls.__name__, name, attr))
    return cls


def public_entry_points(obj: Any) -> list[str]:
    """Names of the wrapped public methods of a service or its class (the tests parametrize over them)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return sorted(n for n in dir(cls) if not n.startswith("_")
                  and getattr(getattr(cls, n, None), "__kiosk_entry_point__", False))
