"""Query strings checked strictly: no unknown name, no repeated scalar, integers in plain digits."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from litestar.datastructures import MultiDict

from domain.errors import FieldError, InvalidInput

_DIGITS = re.compile(r"[0-9]{1,9}")


def check_query(
    params: MultiDict[str],
    scalars: Collection[str] = (),
    repeatable: Collection[str] = (),
    integers: Collection[str] = (),
    lengths: Mapping[str, int] = {},
) -> None:
    """Raise `InvalidInput` naming each parameter that is unknown, given twice though scalar
    (`?limit=1&limit=2`: which one counts would be a guess), not written as plain digits
    where an integer is expected (`limit=1e3`, `limit=+5`), or empty or longer than its
    length in `lengths` (the bound the document gives it).
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
        elif name in lengths and not all(1 <= len(value) <= lengths[name] for value in values):
            errors.append(FieldError(name, f"must be 1 to {lengths[name]} characters long"))
    if errors:
        raise InvalidInput(errors)
