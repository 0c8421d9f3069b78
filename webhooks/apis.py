"""The webhooks HTTP API: one thin view per operation; an operator's once the API is closed."""

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from order_system.auth import IsOperator
from order_system.errors import LENGTH_REQUIRED, REFUSED, UNSUPPORTED_BODY, error_response, refuse_body
from webhooks.addresses import ForbiddenAddress
from webhooks.models import Endpoint
from webhooks.selectors import endpoint_get, endpoint_list
from webhooks.serializers import EndpointCreateInputSerializer, EndpointOutputSerializer, EndpointSecretOutputSerializer
from webhooks.services import endpoint_create, endpoint_delete, endpoint_rotate_secret

# Endpoints are an operator's: a service token or staff once the API is closed; anyone while it is open.
OPERATORS_ONLY = {**REFUSED, 403: error_response("A user's token: webhooks are for service tokens and staff.")}
NOT_FOUND = error_response("No webhook endpoint has this id.")


class EndpointCreateApi(APIView):
    """POST /api/webhooks/: register an endpoint; the answer shows its signing secret, this once."""

    permission_classes = [IsOperator]

    @extend_schema(
        operation_id="webhooks_create",
        request=EndpointCreateInputSerializer,
        responses={
            201: EndpointSecretOutputSerializer,
            400: error_response("A bad field, or a URL webhooks may not be sent to."),
            **OPERATORS_ONLY,
            411: error_response(LENGTH_REQUIRED),
            415: error_response(UNSUPPORTED_BODY),
        },
    )
    def post(self, request):
        data = EndpointCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            endpoint = endpoint_create(**data.validated_data)
        except ForbiddenAddress as exc:
            raise ValidationError({"url": [str(exc)]}) from None
        return Response(EndpointSecretOutputSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointListApi(APIView):
    """GET /api/webhooks/: every endpoint, without secrets."""

    permission_classes = [IsOperator]

    @extend_schema(operation_id="webhooks_list", responses={200: EndpointOutputSerializer(many=True), **OPERATORS_ONLY})
    def get(self, request):
        return Response(EndpointOutputSerializer(endpoint_list(), many=True).data)


class EndpointCollectionApi(EndpointListApi, EndpointCreateApi):  # one URL, two operations, each its own view above
    """Webhook endpoints: list them (GET), or register one (POST)."""


class EndpointDetailApi(APIView):
    """GET or DELETE /api/webhooks/{id}/: read or remove one endpoint."""

    permission_classes = [IsOperator]

    @extend_schema(
        operation_id="webhooks_retrieve",
        responses={200: EndpointOutputSerializer, **OPERATORS_ONLY, 404: NOT_FOUND},
    )
    def get(self, request, endpoint_id: uuid.UUID):
        try:
            endpoint = endpoint_get(endpoint_id=endpoint_id)
        except Endpoint.DoesNotExist:
            raise endpoint_not_found() from None
        return Response(EndpointOutputSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhooks_destroy",
        responses={204: None, **OPERATORS_ONLY, 404: NOT_FOUND},
    )
    def delete(self, request, endpoint_id: uuid.UUID):
        try:
            endpoint_delete(endpoint_id=endpoint_id)
        except Endpoint.DoesNotExist:
            raise endpoint_not_found() from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateSecretApi(APIView):
    """POST /api/webhooks/{id}/rotate-secret/: a new secret, shown this once; the old one signs too for a while."""

    permission_classes = [IsOperator]

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        request=None,
        responses={
            200: EndpointSecretOutputSerializer,
            400: error_response("The request has a body; rotating takes none."),
            **OPERATORS_ONLY,
            404: NOT_FOUND,
            411: error_response(LENGTH_REQUIRED),
            415: error_response(UNSUPPORTED_BODY),
        },
    )
    def post(self, request, endpoint_id: uuid.UUID):
        refuse_body(request)
        try:
            endpoint = endpoint_rotate_secret(endpoint_id=endpoint_id)
        except Endpoint.DoesNotExist:
            raise endpoint_not_found() from None
        return Response(EndpointSecretOutputSerializer(endpoint).data)


def endpoint_not_found() -> NotFound:
    """A fresh 404 each time: a raised exception carries its traceback, so one instance must not be shared."""
    return NotFound({"id": ["No webhook endpoint has this id."]})
