"""Constructor checks shared by the layer modules, in the house error style of :mod:`ganblocks.ops._checks`."""

from __future__ import annotations

from typing import Optional, Union

from ..ops._checks import check_positive


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int, or a ValueError naming ``name`` when it is not a positive int (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_clamp(clamp: Optional[float]) -> None:
    if clamp is not None:
        check_positive("clamp", clamp, allow_zero=True)


def check_pair(name: str, value: Union[int, tuple[int, ...]], *, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``minimum``, as a pair."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, tuple)
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in pair)
    ):
        raise ValueError(f"{name} must be an int or a pair of ints, each >= {minimum}, got {value!r}")
    return (pair[0], pair[1])
