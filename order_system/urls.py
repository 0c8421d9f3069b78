"""Top-level routes: the API, its schema and docs, the admin, liveness and readiness."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from metrics.apis import prometheus_metrics
from metrics.views import dashboard
from order_system import errors
from order_system.health import healthz, readyz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("orders.urls")),
    path("api/", include("metrics.urls")),
    path("api/schema/", errors.get_only(SpectacularAPIView.as_view()), name="schema"),
    path("api/docs/", errors.get_only(SpectacularSwaggerView.as_view(url_name="schema")), name="docs"),
    path("healthz", errors.get_only(healthz), name="healthz"),
    path("readyz", errors.get_only(readyz), name="readyz"),
    path("metrics", errors.get_only(prometheus_metrics), name="prometheus"),
    path("dashboard/", errors.get_only(dashboard), name="dashboard"),
    # Any other /api/ path gets the API's JSON 404, also with DEBUG on (where handler404 is bypassed).
    re_path(r"^api/", errors.page_not_found),
    # So does any other path, unless a GET lacks only its trailing slash (errors.no_route).
    re_path(r"", errors.no_route),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
