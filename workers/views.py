"""A health check for load balancers and monitors."""

from __future__ import annotations

from django.db import DatabaseError, InterfaceError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import status


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """200 while a manager beats and due jobs start in time; 503 otherwise.

    GET or HEAD. A database that cannot be read is a 503 too, in JSON.
    """
    try:
        report = status.health()
    except (DatabaseError, InterfaceError) as error:
        report = {
            "healthy": False,
            "problems": [f"the database cannot be read: {type(error).__name__}"],
        }
    return JsonResponse(report, status=200 if report["healthy"] else 503)
