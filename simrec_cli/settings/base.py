"""Base class shared by every settings model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A settings block that rejects unknown keys and non-finite numbers, so a typo never passes silently.

    `.inf` or `.nan` in a float setting would only show up later as a NaN loss or an empty schedule.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def check_multiple_of_32(shape: tuple[int, int] | list[int], name: str) -> None:
    """Raise ValueError unless both sides are positive multiples of 32 (the stride of the top level)."""
    for side in shape:
        if side <= 0 or side % 32:
            raise ValueError(f"{name} {list(shape)}: every side must be a positive multiple of 32 (e.g. 416)")
