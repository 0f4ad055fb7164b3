"""JSON-lines logging with redaction of personal data (the rules: kiosk.domain.redaction).

Redaction happens in a filter on the handler, so a careless ``log.info(card)``
anywhere in the code still never writes an ID number, a phone number or the
name of the citizen at the terminal. Names are not guessable by pattern, so the
session registers the names it holds and unregisters them when it wipes.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import logging.handlers
from collections.abc import Iterable
from pathlib import Path

from kiosk.domain.redaction import REDACTOR, Redactor


class RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor = REDACTOR):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        # Render once, redact, and freeze the result so no later formatter sees raw args.
        msg = record.getMessage()
        record.msg = self.redactor.redact(msg)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redactor.redact(logging.Formatter().formatException(record.exc_info))
            # Formatters use exc_text once it is set. Keep only the exception's type for whoever
            # inspects the record (pytest's caplog, a later handler): never its value or traceback,
            # which hold the unredacted message and the frames' locals.
            record.exc_info = (record.exc_info[0], None, None)  # type: ignore[assignment]
        elif record.exc_text:  # rendered by an earlier handler: still redact it
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        extra = getattr(record, "data", None)
        if extra is not None:
            record.data = json.loads(self.redactor.redact(json.dumps(extra, ensure_ascii=False, default=str)))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data = getattr(record, "data", None)
        if data is not None:
            doc["data"] = data
        if record.exc_text:
            doc["exc"] = record.exc_text
        elif record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


_installed: list[logging.Handler] = []


def setup_logging(
    log_dir: str | Path,
    level: str = "INFO",
    max_bytes: int = 5_000_000,
    backups: int = 5,
    filename: str = "kiosk.jsonl",
    console: bool = False,
) -> Path:
    """Install the rotating JSON handler on the root logger (idempotent); return the file path."""
    remove_logging()
    root = logging.getLogger()
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / filename
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    _installed.append(handler)
    if console:
        ch = logging.StreamHandler()
        ch.addFilter(RedactingFilter())
        ch.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(ch)
        _installed.append(ch)
    root.setLevel(level)
    return path


def remove_logging() -> None:
    """Take the handlers setup_logging installed off the root logger (tests; a clean shutdown)."""
    root = logging.getLogger()
    for h in _installed:
        root.removeHandler(h)
        h.close()
    _installed.clear()


def tail(path: str | Path, lines: int = 50) -> list[str]:
    """The last lines of a log, redacted again on the way out (technician screens show these)."""
    p = Path(path)
    if not p.exists():
        return []
    with open(p, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 256 * 1024))
        data = f.read().decode("utf-8", "replace").splitlines()
    return [REDACTOR.redact(x) for x in data[-lines:]]


def iter_secrets(values: Iterable[str | None]) -> list[str]:
    return [v for v in values if v]
