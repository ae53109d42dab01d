from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Workers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every installed app's `jobs` module registers its job types,
        # this app's own built-ins included.
        autodiscover_modules("jobs")
        from . import checks  # noqa: F401
