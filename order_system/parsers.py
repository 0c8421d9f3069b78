"""The API's only parser: strict JSON objects with exact decimals."""

import json
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from order_system.errors import PayloadTooLarge


class StrictJSONParser(BaseParser):
    """UTF-8 JSON objects only: numbers stay exact Decimals; NaN, duplicate keys and bodies over 1 MB are refused."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge()
        try:
            data = json.loads(
                body.decode("utf-8"),
                parse_float=Decimal,  # 90.99 stays 90.99, never 90.98999...
                parse_constant=_refuse_constant,
                object_pairs_hook=_unique_keys,
            )
        except UnicodeDecodeError:
            raise ParseError("The body is not valid UTF-8.") from None
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ParseError("The body must be a JSON object.")
        return data


def _refuse_constant(name: str):
    """NaN and Infinity are not JSON numbers."""
    raise ValueError(f"{name} is not allowed")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A key given twice is ambiguous, so it is an error rather than last-one-wins."""
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return data
