"""A health check for load balancers and monitors."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import status


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """200 while a manager beats and due jobs start in time; 503 otherwise."""
    report = status.health()
    return JsonResponse(report, status=200 if report["healthy"] else 503)
