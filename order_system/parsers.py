"""The API's only parser, strict JSON objects with exact decimals, and the negotiation that picks it."""

import json
import re
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser

# The module, not its names: errors.py imports DRF's views, whose APIView loads this parser while errors.py is still
# half imported (when the middleware is the first to import errors).
from order_system import errors


class StrictJSONParser(BaseParser):
    """UTF-8 JSON objects only: numbers stay exact Decimals; NaN, duplicate keys, compressed, truncated and over 1 MB
    bodies are refused."""

    media_type = "application/json"
    # Matched in full and case-insensitively by StrictContentNegotiation; UTF-8 is the only charset JSON has (RFC 8259).
    content_type = re.compile(r'application/json(?:[ \t]*;[ \t]*charset=(?:utf-8|"utf-8"))?', re.IGNORECASE)

    def parse(self, stream, media_type=None, parser_context=None):
        meta = parser_context["request"].META
        if meta.get("HTTP_CONTENT_ENCODING", "identity").strip(" \t").lower() != "identity":
            raise errors.UnsupportedContentEncoding()
        # DRF calls a parser only for a positive Content-Length; a chunked body never gets here (see middleware.py).
        length = int(meta.get("CONTENT_LENGTH") or 0)
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise errors.PayloadTooLarge()
        body = stream.read(length)
        # The client closed its side early: what arrived is part of a body, which could still be valid JSON.
        if len(body) < length:
            raise ParseError(
                f"The body ended after {len(body)} of the {length} bytes its Content-Length announced.",
                code="truncated",
            )
        try:
            data = json.loads(
                body.decode("utf-8"),
                parse_float=Decimal,  # 90.99 stays 90.99, never 90.98999...
                parse_int=_whole_number,
                parse_constant=_refuse_constant,
                object_pairs_hook=_unique_keys,
            )
        except UnicodeDecodeError:
            raise ParseError("The body is not valid UTF-8.") from None
        except RecursionError:  # its own message names Python's internals
            raise ParseError("The body is not valid JSON: it is nested too deeply.") from None
        except ValueError as exc:  # the json module's, or one of the three below
            raise ParseError(f"The body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ParseError("The body must be a JSON object.")
        return data


class StrictContentNegotiation(DefaultContentNegotiation):
    """A body's parser is the one whose content_type matches the request's Content-Type in full.

    DRF's own matching lets `*/*` or `application/*` pick any parser, and ignores parameters such as charset=latin-1.
    """

    def select_parser(self, request, parsers):
        content_type = request.content_type.strip(" \t")
        for parser in parsers:
            if parser.content_type.fullmatch(content_type):
                return parser
        raise UnsupportedMediaType(
            content_type,
            detail=f'Send Content-Type: application/json (charset=utf-8 is optional), not "{content_type}".',
        )


def _whole_number(digits: str) -> int:
    """A JSON integer, up to 100 digits: Python's own limit says how to raise it in its error (4,300 digits)."""
    if len(digits.lstrip("-")) > 100:
        raise ValueError("a whole number has more than 100 digits")
    return int(digits)


def _refuse_constant(name: str):
    """NaN and Infinity are not JSON numbers."""
    raise ValueError(f"{name} is not allowed")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A key given twice is ambiguous, so it is an error rather than last-one-wins."""
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return data
