"""The request models, all of them: JSON values of the wrong type are refused, never
converted (a test over every model, so a new body cannot forget it)."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, ValidationError

from studio_auth.web import schemas


def _request_models() -> Iterator[type[BaseModel]]:
    pending: list[type[BaseModel]] = [schemas._Request]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model is not schemas._Request:
            yield model


def _types_in(annotation: object) -> set[object]:
    """The plain types an annotation admits: ``int`` for ``Annotated[int, ...] | None``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _types_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_types_in(arg) for arg in typing.get_args(annotation)))
    return {annotation}


def _fields_of(kind: type) -> list[tuple[type[BaseModel], str]]:
    return [
        (model, name)
        for model in _request_models()
        for name, field in model.model_fields.items()
        if kind in _types_in(field.annotation)
    ]


def _refuses(model: type[BaseModel], name: str, value: object) -> bool:
    try:
        model.model_validate({name: value})
    except ValidationError as exc:
        return any(error["loc"] == (name,) for error in exc.errors())
    return False


def test_the_models_have_booleans_and_integers() -> None:
    assert ("UserUpdateRequest", "is_active") in {(m.__name__, n) for m, n in _fields_of(bool)}
    assert ("UserCreateRequest", "artist_id") in {(m.__name__, n) for m, n in _fields_of(int)}


@pytest.mark.parametrize("value", ["no", "false", "true", 0, 1, 0.0, ""])
def test_every_boolean_in_every_request_body_is_strict(value: object) -> None:
    for model, name in _fields_of(bool):
        assert _refuses(model, name, value), f"{model.__name__}.{name} took {value!r}"


@pytest.mark.parametrize("value", [True, False, "5", 5.5, float("nan"), float("inf")])
def test_every_integer_in_every_request_body_is_strict(value: object) -> None:
    for model, name in _fields_of(int):
        assert _refuses(model, name, value), f"{model.__name__}.{name} took {value!r}"


def test_an_integer_may_be_written_with_a_zero_fraction() -> None:
    """JSON Schema's "integer" is any number without a fraction: 5.0 is 5."""
    for model, name in _fields_of(int):
        assert not _refuses(model, name, 5.0), f"{model.__name__}.{name} refused 5.0"
