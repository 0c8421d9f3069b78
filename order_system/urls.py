"""Top-level routes: the API, its schema and docs, the admin, liveness and readiness."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from metrics.apis import PrometheusMetricsApi
from metrics.views import dashboard
from order_system import errors
from order_system.health import healthz, readyz
from order_system.token_apis import TokenObtainApi, TokenRefreshApi

# With JWT on, the service signs tokens for its Django users, unless a provider (JWT_JWKS_URL) issues them.
token_urlpatterns = (
    [
        path("api/auth/token/", TokenObtainApi.as_view(), name="token_obtain"),
        path("api/auth/token/refresh/", TokenRefreshApi.as_view(), name="token_refresh"),
    ]
    if "jwt" in settings.API_AUTH and not settings.JWT_JWKS_URL
    else []
)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("orders.urls")),
    path("api/", include("metrics.urls")),
    path("api/", include("webhooks.urls")),
    *token_urlpatterns,
    path("api/schema/", errors.get_only(SpectacularAPIView.as_view()), name="schema"),
    path("api/docs/", errors.get_only(SpectacularSwaggerView.as_view(url_name="schema")), name="docs"),
    path("healthz", errors.get_only(healthz), name="healthz"),
    path("readyz", errors.get_only(readyz), name="readyz"),
    path("metrics", errors.get_only(PrometheusMetricsApi.as_view()), name="prometheus"),
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
