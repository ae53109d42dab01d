from django.apps import AppConfig


class DappConfig(AppConfig):
    name = "quickdapp.dapp"
    label = "dapp"
    verbose_name = "QuickDapp"
    default_auto_field = "django.db.models.BigAutoField"
