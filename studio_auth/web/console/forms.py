"""Reading the console's forms: bounded text out of a posted form, and the errors a page
shows beside its fields (GOV.UK Design System's error summary and error messages)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from studio_auth.web.console.browser import check_csrf
from studio_auth.web.schemas import NAME_MAX, PASSWORD_MAX

# The form parser's own bounds: a console form has a handful of short fields.
MAX_FIELDS = 32
MAX_FIELD_BYTES = PASSWORD_MAX * 4


@dataclass
class Form:
    """A posted form's values, read as text, and the errors found in them (field name ->
    message, in the order the fields appear on the page)."""

    data: Mapping[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, *, limit: int = NAME_MAX, strip: bool = True) -> str:
        """The field's text ("" when absent or a file), cut to ``limit`` characters. A
        value that is cut, holds a NUL or cannot be text is the services' to refuse:
        they say what is wrong with it."""
        value = self.data.get(name)
        if not isinstance(value, str):
            return ""
        value = value[: limit + 1]
        return value.strip() if strip else value

    def password(self, name: str) -> str:
        return self.text(name, limit=PASSWORD_MAX, strip=False)

    def require(self, name: str, message: str, *, strip: bool = True) -> str:
        """The field's text; records ``message`` as its error when it is empty."""
        value = self.password(name) if not strip else self.text(name)
        if not value:
            self.errors.setdefault(name, message)
        return value

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)


async def read_form(request: Request) -> Form:
    """The posted form, without an anti-forgery check (only the sign-in form, which has
    no session yet, is read this way; its origin is checked like every post's)."""
    data = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    return Form(data)


async def read_checked_form(request: Request) -> Form:
    """The posted form, once its anti-forgery token is this session's (CrossSiteRequest
    otherwise)."""
    form = await read_form(request)
    check_csrf(request, form.data)
    return form
