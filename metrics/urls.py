"""Routes of the metrics API (under /api/); /metrics and /dashboard/ are mounted at the top level."""

from django.urls import path

from metrics import apis

app_name = "metrics"

urlpatterns = [
    path("metrics/", apis.MetricsApi.as_view(), name="metrics"),
]
