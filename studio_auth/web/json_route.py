"""The API's route class: an API route takes a request body as JSON only.

The check is per route, not for the whole app, because the console's pages take HTML
form posts; it runs before the route's dependencies, so a body of the wrong type is
refused (415) before anything else is looked at, signed in or not.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from studio_auth.web.errors import problem


class JsonRoute(APIRoute):
    """An API route: a request with a body must say it is JSON (``application/json`` or
    a structured ``application/...+json`` type, RFC 6839), or it gets 415."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def json_only(request: Request) -> Response:
            if await request.body() and not is_json_media_type(request):
                return problem(
                    "unsupported-media-type",
                    "Unsupported media type",
                    415,
                    "send the request body as JSON, with Content-Type: application/json",
                )
            return await handler(request)

        return json_only


def is_json_media_type(request: Request) -> bool:
    """Whether the request says its body is JSON, parameters aside."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
