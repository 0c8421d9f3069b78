"""Routes of the orders API, mounted under /api/."""

from django.urls import path

from orders import apis

app_name = "orders"

urlpatterns = [
    path("orders/", apis.OrderCollectionApi.as_view(), name="collection"),
    path("orders/<str:order_id>/", apis.OrderDetailApi.as_view(), name="detail"),
    path("orders/<str:order_id>/status/", apis.OrderStatusApi.as_view(), name="status"),
    path("orders/<str:order_id>/cancel/", apis.OrderCancelApi.as_view(), name="cancel"),
]
