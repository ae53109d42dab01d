"""Settings for the test suite: the example project plus a test-only app."""

from quickdapp.settings import *  # noqa: F403
from quickdapp.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]
