"""Other libraries' records are rendered as tdb's own events: one line each."""

from __future__ import annotations

import logging

import pytest

from entrypoints.logs import configure_logging


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_a_librarys_message_ending_in_a_newline_is_one_line(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(log_format)
    # psycopg's connection errors end with a newline, as libpq's messages do.
    logging.getLogger("psycopg.pool").warning("error connecting in %r: %s", "pool", "refused\n")
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.endswith("\n")
    assert "refused" in err
    assert "psycopg.pool" in err
