"""Durations as people type them on the command line: `90d`, `24h`, `15m`, `30s`."""

from __future__ import annotations

import re
from datetime import timedelta

import click

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"([0-9]{1,9})([dhms])")


def parse_duration(text: str) -> timedelta:
    """`<digits><unit>`, the unit one of d, h, m, s; `ValueError` otherwise."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a duration such as 90d, 24h, 15m or 30s")
    return timedelta(seconds=int(found[1]) * _UNITS[found[2]])


class Duration(click.ParamType):
    """A click parameter holding a `timedelta`, optionally in whole days only."""

    name = "duration"

    def __init__(self, whole_days: bool = False) -> None:
        self._whole_days = whole_days

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            duration = parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if self._whole_days and (duration.seconds or duration.microseconds or not duration.days):
            self.fail(f"{value!r} is not a whole number of days (such as 90d)", param, ctx)
        return duration
