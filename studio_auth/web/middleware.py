"""Plain ASGI middleware: the gate every request body passes (size, media type, encoding)
and the headers every response carries."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studio_auth.web.errors import PROBLEM_MEDIA_TYPE, problem_bytes

# Authentication responses must never be stored by a browser or a shared cache (RFC 9111
# no-store; RFC 6749 section 5.1 asks the same of token responses).
_NOT_STORED: list[tuple[bytes, bytes]] = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
_EVERY_RESPONSE: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
# The API serves no HTML, so its content security policy can forbid everything.
API_POLICY = b"default-src 'none'; frame-ancestors 'none'"
# The console's pages: scripts, styles and images from the service itself only, never
# inline (no 'unsafe-inline' or 'unsafe-eval', so injected markup cannot run), forms
# that post only back to it, and no framing (clickjacking). Never stored: they show a
# signed-in person's data (ASVS 5.0 14.3.2).
PAGE_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [*_NOT_STORED, *_EVERY_RESPONSE, (b"content-security-policy", API_POLICY)]
PAGE_HEADERS = [*_NOT_STORED, *_EVERY_RESPONSE, (b"content-security-policy", PAGE_POLICY)]
# The console's own style sheet and scripts are the same for everyone: a browser may keep
# them but asks each time whether they changed (their ETag), so an upgrade shows at once.
STATIC_HEADERS = [
    (b"cache-control", b"no-cache"),
    *_EVERY_RESPONSE,
    (b"content-security-policy", API_POLICY),
]
_SECURITY_HEADER_NAMES = frozenset(
    name for headers in (SECURITY_HEADERS, PAGE_HEADERS, STATIC_HEADERS) for name, _ in headers
)
_STATIC_TYPES = (b"text/css", b"text/javascript", b"application/javascript", b"image/")


def headers_for(content_type: bytes) -> list[tuple[bytes, bytes]]:
    """The security headers for a response of ``content_type``: a page's, a static
    file's, or the API's (everything else, and a response without a type)."""
    kind = content_type.split(b";", 1)[0].strip().lower()
    if kind == b"text/html":
        return PAGE_HEADERS
    if kind.startswith(_STATIC_TYPES):
        return STATIC_HEADERS
    return SECURITY_HEADERS


class SecurityHeadersMiddleware:
    """Adds the security headers for each HTTP response's kind (``headers_for``),
    replacing any the app set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = []
                content_type = b""
                for k, v in message.get("headers", []):
                    name = k.lower()
                    if name == b"content-type":
                        content_type = v
                    if name not in _SECURITY_HEADER_NAMES:
                        headers.append((k, v))
                message["headers"] = headers + headers_for(content_type)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestBodyMiddleware:
    """Refuses a request body no route can take, before the app reads it: larger than
    ``max_bytes`` (413), or not UTF-8 (400). Whether it must be JSON is the route's
    business (``json_route.JsonRoute``: the console's pages take form posts).

    A declared Content-Length over the limit is refused at once; a chunked body is read
    up to the limit and refused as soon as it passes it, so a client cannot make the
    server buffer more than ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == -1:
            await _answer(
                send, 400, "malformed-body", "Malformed request body", "invalid Content-Length"
            )
            return
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before sending its body; let the app see that.
                await self.app(scope, _replay([message], receive), send)
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        if whole and not _is_utf8_text(whole):
            await _answer(
                send,
                400,
                "malformed-body",
                "Malformed request body",
                "the request body must be text encoded as UTF-8",
            )
            return
        message = {"type": "http.request", "body": whole, "more_body": False}
        await self.app(scope, _replay([message], receive), send)

    async def _too_large(self, send: Send) -> None:
        await _answer(
            send,
            413,
            "body-too-large",
            "Request body too large",
            f"the request body is limited to {self.max_bytes} bytes",
        )


def _is_utf8_text(body: bytes) -> bool:
    """Whether ``body`` is UTF-8 (RFC 8259 section 8.1) with no raw NUL, which neither
    JSON text nor a form post holds. The NUL test matters: the JSON parser would take a
    body of ASCII and NUL bytes, which is valid UTF-8, for UTF-16 or UTF-32 and read it
    in that encoding."""
    if b"\x00" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent, -1 when unparseable."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) <= 18 else -1
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _answer(send: Send, status: int, kind: str, title: str, detail: str) -> None:
    body = problem_bytes(kind, title, status, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
