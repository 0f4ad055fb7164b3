"""Test-wide setup: Kivy must be configured before anything imports it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

_kivy_home = tempfile.mkdtemp(prefix="kivy-home-")
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_HOME", _kivy_home)
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
# Kivy's own mock GL backend (the one Kivy's CI uses): widgets, layout, text, touches and events are the
# real ones, only the OpenGL calls are no-ops. Software rendering (llvmpipe) on a 2-core machine cost
# three quarters of the UI tests' CPU and measured the machine, not the kiosk. `make test-full` (and
# KIOSK_TEST_REAL_GL=1) draws for real; `kiosk demo`'s test always does, because it checks the pictures.
if os.environ.get("KIOSK_TEST_REAL_GL") != "1" and os.environ.get("KIOSK_TEST_FULL") != "1":
    os.environ.setdefault("KIVY_GL_BACKEND", "mock")
# Tests never read the developer's site file.
os.environ.pop("KIOSK_CONFIG", None)
for _k in [k for k in os.environ if k.startswith("KIOSK__")]:
    os.environ.pop(_k)
# Tests run on the development profile (config/development.toml) explicitly, like `kiosk run --simulate`.
os.environ["KIOSK_PROFILE"] = "development"

import pytest  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Default runs keep soak and crash tests short; `make test-full` sets this.
FULL = os.environ.get("KIOSK_TEST_FULL") == "1"


@pytest.fixture
def full_counts() -> bool:
    return FULL


#: the files that take longest: collected first, so that scripts/test.sh's parallel workers start them at once
#: instead of waiting for them at the end
LONG_FIRST = ("tests/soak/", "tests/ui/test_cli.py", "tests/offline_cache/test_crash_kill9.py",
              "tests/ui/test_accessibility.py", "tests/ui/test_ui_thread.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, p in enumerate(LONG_FIRST) if item.nodeid.startswith(p)), len(LONG_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def _kiosk_log_handlers_do_not_outlive_their_test():
    """A test that installs the kiosk's JSON log handlers takes them off again: their redacting filter
    strips exception values from shared records, which later tests' caplog assertions would miss."""
    import logging

    from kiosk.infra import logs

    level = logging.getLogger().level
    yield
    if logs._installed:
        logs.remove_logging()
        logging.getLogger().setLevel(level)
