"""Example views: submit a job from a request, read its status."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET, require_POST

from workers.exceptions import InvalidJobError
from workers.models import WorkerJob


@require_POST
def submit_hello(request: HttpRequest) -> JsonResponse:
    """POST name=<text>: submit a sayHello job and return its id."""
    name = request.POST.get("name", "world")
    user = request.user if request.user.is_authenticated else None
    try:
        job = WorkerJob.objects.submit("sayHello", {"name": name}, user=user)
    except InvalidJobError as error:
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse(
        {"id": job.pk, "status": job.status, "url": f"/jobs/{job.pk}/"}, status=202
    )


@require_GET
def job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    """A job's status and, once finished, its result."""
    job = get_object_or_404(WorkerJob, pk=job_id)
    return JsonResponse(
        {"id": job.pk, "type": job.type, "status": job.status, "result": job.result}
    )
