"""The product's routes plus POST /bench/noop/: a DRF view that parses the body and answers, touching nothing."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from order_system.urls import urlpatterns as product_urlpatterns


class NoopApi(APIView):
    """Parse the JSON body, answer 201: everything a create does except the work."""

    def post(self, request):
        return Response({"received": len(request.data)}, status=201)


urlpatterns = [path("bench/noop/", NoopApi.as_view()), *product_urlpatterns]
