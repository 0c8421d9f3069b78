"""Routes of the metrics API, mounted under /api/."""

from django.urls import path

from metrics import apis

app_name = "metrics"

urlpatterns = [
    path("metrics/", apis.MetricsApi.as_view(), name="metrics"),
]
