"""Settings of the QuickDapp example project, read from the environment.

Every value can be set as an environment variable or in a `.env` file beside
manage.py. The README lists each one with its default.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("SECRET_KEY", default="insecure-development-key-change-me")
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "workers",
    "quickdapp.dapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "quickdapp.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "quickdapp.wsgi.application"

# DATABASE_URL unset: an SQLite file beside manage.py.
# PostgreSQL: DATABASE_URL=postgres://user:password@host:5432/name
# An empty DATABASE_URL counts as unset.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several worker processes share one SQLite file. WAL lets readers run
    # beside the writer, IMMEDIATE takes the write lock when a transaction
    # begins (so a claim never fails half-way with "database is locked"),
    # and the busy timeout makes a writer wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env.float("SQLITE_BUSY_TIMEOUT", default=30.0),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

# The workers app. Each setting is described in the README.
WORKER_COUNT = env.str("WORKER_COUNT", default="1")
WORKER_LOG_LEVEL = env.str("WORKER_LOG_LEVEL", default="info")
WORKER_LOG_FORMAT = env.str("WORKER_LOG_FORMAT", default="text")
WORKER_POLL_INTERVAL = env.float("WORKER_POLL_INTERVAL", default=1.0)
WORKER_LISTEN = env.bool("WORKER_LISTEN", default=True)
WORKER_MAX_ATTEMPTS = env.int("WORKER_MAX_ATTEMPTS", default=5)
WORKER_RETRY_DELAY = env.int("WORKER_RETRY_DELAY", default=60)
WORKER_REMOVE_DELAY = env.int("WORKER_REMOVE_DELAY", default=7 * 24 * 3600)
WORKER_CRON_TIME_ZONE = env.str("WORKER_CRON_TIME_ZONE", default=TIME_ZONE)
WORKER_HEARTBEAT_INTERVAL = env.float("WORKER_HEARTBEAT_INTERVAL", default=5.0)
WORKER_STALE_AFTER = env.float("WORKER_STALE_AFTER", default=30.0)
WORKER_SHUTDOWN_TIMEOUT = env.float("WORKER_SHUTDOWN_TIMEOUT", default=30.0)
WORKER_JOB_TIMEOUT = env.float("WORKER_JOB_TIMEOUT", default=None)
WORKER_MAX_MEMORY_MB = env.float("WORKER_MAX_MEMORY_MB", default=None)
WORKER_HEALTH_MAX_LAG = env.float("WORKER_HEALTH_MAX_LAG", default=60.0)
WORKER_REMOVE_OLD_JOBS_SCHEDULE = env.str(
    "WORKER_REMOVE_OLD_JOBS_SCHEDULE", default="0 2 * * *"
)
WORKER_WATCH_CHAIN_SCHEDULE = env.str(
    "WORKER_WATCH_CHAIN_SCHEDULE", default="*/30 * * * * *"
)
# Modules with @task functions beyond each app's `tasks` module.
WORKER_TASK_MODULES = env.list("WORKER_TASK_MODULES", default=[])

# Django's Tasks framework (django.tasks; the django-tasks package on Django
# 5.2): @task functions are stored as worker jobs and run by runworkers.
# QUEUES empty: any queue name is accepted.
TASKS = {"default": {"BACKEND": "workers.backends.WorkerJobBackend", "QUEUES": []}}

# The chain jobs (watchChain, deployMulticall3). CHAIN_RPC_URL unset: they are
# not scheduled. The wallet key is read from the environment only.
CHAIN_RPC_URL = env.str("CHAIN_RPC_URL", default="") or None
CHAIN_ID = env.int("CHAIN_ID", default=None)
SERVER_WALLET_PRIVATE_KEY = env.str("SERVER_WALLET_PRIVATE_KEY", default="") or None
CHAIN_CONFIRMATIONS = env.int("CHAIN_CONFIRMATIONS", default=0)
CHAIN_BLOCKS_PER_RUN = env.int("CHAIN_BLOCKS_PER_RUN", default=500)
CHAIN_RPC_TIMEOUT = env.float("CHAIN_RPC_TIMEOUT", default=10.0)
CHAIN_START_BLOCK = env.int("CHAIN_START_BLOCK", default=None)
# The example dapp's token factory; unset: ERC20NewToken from any contract.
DAPP_TOKEN_FACTORY_ADDRESS = env.str("DAPP_TOKEN_FACTORY_ADDRESS", default="") or None

# LOGGING falls back to info and text for values it cannot use, so that
# `manage.py check` gets to report them (workers.E007, workers.E008) rather
# than logging.config failing first.
_LOG_LEVEL = WORKER_LOG_LEVEL.upper()
if _LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    _LOG_LEVEL = "INFO"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "workers.log.KeyValueFormatter"},
        "json": {"()": "workers.log.JSONFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if WORKER_LOG_FORMAT == "json" else "text",
        },
    },
    "loggers": {
        "workers": {
            "handlers": ["console"],
            "level": _LOG_LEVEL,
            "propagate": False,
        },
        "quickdapp": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
