"""The workers app's URLs: `path("", include("workers.urls"))` in a project."""

from django.urls import path

from .views import health

urlpatterns = [
    path("health/workers/", health, name="workers-health"),
]
