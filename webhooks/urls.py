"""Routes of the webhooks API, mounted under /api/."""

from django.urls import path

from webhooks import apis

app_name = "webhooks"

urlpatterns = [
    path("webhooks/", apis.EndpointCollectionApi.as_view(), name="collection"),
    path("webhooks/<uuid:endpoint_id>/", apis.EndpointDetailApi.as_view(), name="detail"),
    path("webhooks/<uuid:endpoint_id>/rotate-secret/", apis.EndpointRotateSecretApi.as_view(), name="rotate-secret"),
]
