"""Query strings checked strictly: no unknown name, no repeated scalar, integers in plain digits."""

from __future__ import annotations

import re
from collections.abc import Collection

from litestar.datastructures import MultiDict

from domain.errors import FieldError, InvalidInput

_DIGITS = re.compile(r"[0-9]{1,9}")


def check_query(
    params: MultiDict[str],
    scalars: Collection[str] = (),
    repeatable: Collection[str] = (),
    integers: Collection[str] = (),
) -> None:
    """Raise `InvalidInput` naming each parameter that is unknown, given twice though scalar
    (`?limit=1&limit=2`: which one counts would be a guess), or not written as plain digits
    where an integer is expected (`limit=1e3`, `limit=+5`).
    """
    errors = []
    for name in sorted(set(params)):
        values = params.getall(name)
        if name not in scalars and name not in repeatable:
            errors.append(FieldError(name, "is not a known query parameter"))
        elif name in scalars and len(values) > 1:
            errors.append(FieldError(name, "must be given at most once"))
        elif name in integers and not all(_DIGITS.fullmatch(value) for value in values):
            errors.append(FieldError(name, "must be an integer written in digits"))
    if errors:
        raise InvalidInput(errors)
