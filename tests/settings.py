"""Settings for the test suite: the example project plus a test-only app."""

import os
import tempfile

from quickdapp.settings import *  # noqa: F403
from quickdapp.settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

# One test database per test run, so that runs side by side on one machine
# do not drop each other's tables. Worker processes that the tests start are
# pointed at it through DATABASE_URL (tests/conftest.py).
_default = DATABASES["default"]
if _default["ENGINE"] == "django.db.backends.sqlite3":
    _name = os.environ.get("SQLITE_TEST_NAME") or os.path.join(
        tempfile.gettempdir(), f"quickdapp-test-{os.getpid()}.sqlite3"
    )
else:
    _name = f"test_{_default['NAME']}_{os.getpid()}"
_default["TEST"] = {**_default.get("TEST", {}), "NAME": _name}
