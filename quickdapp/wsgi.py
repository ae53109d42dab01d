"""WSGI entry point of the QuickDapp example project."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quickdapp.settings")

application = get_wsgi_application()
