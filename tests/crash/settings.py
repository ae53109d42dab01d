"""The example project's settings plus the job types of the crash tests."""

from quickdapp.settings import *  # noqa: F403
from quickdapp.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.crash"]
