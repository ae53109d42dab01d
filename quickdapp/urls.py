from django.contrib import admin
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from quickdapp.dapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    # CSRF-exempt so the README's curl example works; a real view keeps CSRF.
    path("jobs/hello/", csrf_exempt(views.submit_hello), name="submit-hello"),
    path("jobs/<int:job_id>/", views.job_status, name="job-status"),
    path("", include("workers.urls")),  # GET /health/workers/
]
