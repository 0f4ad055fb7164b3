"""Money amounts: integer cents (分), bounded, never a float or a bool.

A payment order's amount comes from the platform and goes on the screen and the
receipt; an amount that is not a sane integer is refused where it enters, with the
reason, before any arithmetic (``10**400 / 100`` raises OverflowError in whoever
formats it).
"""
from __future__ import annotations

__all__ = ["MAX_AMOUNT_CENTS", "InvalidAmount", "check_amount_cents"]

#: 10 million yuan: far above any fee a kiosk collects, far below any overflow.
MAX_AMOUNT_CENTS = 10**9

REASONS = ("type", "not_positive", "too_large")


class InvalidAmount(ValueError):
    """Raised with a machine-readable ``reason`` (one of REASONS); the message says which bound failed."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS
        self.reason = reason
        super().__init__(f"amount_cents {detail} ({reason})")


def check_amount_cents(value: object, maximum: int = MAX_AMOUNT_CENTS) -> int:
    """The amount if it is an int (not a bool) with 0 < value <= maximum; InvalidAmount otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount("type", f"must be an integer number of cents, not {type(value).__name__}")
    if value <= 0:
        raise InvalidAmount("not_positive", "must be more than 0")
    if value > maximum:
        # The value itself is not printed: a 400-digit number makes a useless message.
        raise InvalidAmount("too_large", f"must be at most {maximum}")
    return value
