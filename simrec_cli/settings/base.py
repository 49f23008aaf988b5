"""Base class shared by every settings model."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from simrec_cli.errors import quoted


def _accepts_bool(annotation: Any) -> bool:
    """Whether a field's type has `bool` in it (alone, in a union, or as the items of a list)."""
    return annotation is bool or annotation is Any or any(_accepts_bool(arg) for arg in get_args(annotation))


def _holds_bool(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, list | tuple) and any(isinstance(v, bool) for v in value))


class StrictModel(BaseModel):
    """A settings block that rejects unknown keys, non-finite numbers and yes/no values given for numbers, so a
    typo never passes silently.

    `.inf` or `.nan` in a float setting would only show up later as a NaN loss or an empty schedule; pydantic
    would read `train.batch_size=true` as a batch of 1.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and _holds_bool(value) and not _accepts_bool(field.annotation):
            raise ValueError(f"expects a number, not true or false (got {quoted(value)})")
        return value


def check_multiple_of_32(shape: tuple[int, int] | list[int], name: str) -> None:
    """Raise ValueError unless both sides are positive multiples of 32 (the stride of the top level)."""
    for side in shape:
        if side <= 0 or side % 32:
            raise ValueError(f"{name} {list(shape)}: every side must be a positive multiple of 32 (e.g. 416)")
