"""Settings for the benchmark: the example project plus a no-op job type.

DATABASE_URL is set by `python -m bench` to the benchmark's own database.
"""

from quickdapp.settings import *  # noqa: F403
from quickdapp.settings import INSTALLED_APPS, LOGGING

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
# DEBUG would keep every query in memory and slow each one down.
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
LOGGING["loggers"]["workers"]["level"] = "WARNING"
