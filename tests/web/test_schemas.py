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


def _fields_of(kind: type) -> list[tuple[type[BaseModel], str]]:
    found = []
    for model in _request_models():
        for name, field in model.model_fields.items():
            annotation = field.annotation
            union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
            if annotation is kind or (union and kind in typing.get_args(annotation)):
                found.append((model, name))
    return found


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


@pytest.mark.parametrize("value", [True, False, "5", 5.0, 5.5])
def test_every_integer_in_every_request_body_is_strict(value: object) -> None:
    for model, name in _fields_of(int):
        assert _refuses(model, name, value), f"{model.__name__}.{name} took {value!r}"
