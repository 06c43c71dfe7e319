"""Connections cut or refused are logged as one count per interval, never one line per socket."""

from __future__ import annotations

import asyncio
import logging

import pytest

from entrypoints.http.protocol import CUT_HEADERS, REFUSED, ShedReport


def test_thousands_of_cut_connections_make_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        report = ShedReport(loop, interval=60)
        with caplog.at_level(logging.WARNING, logger="tdb.connections"):
            for _ in range(20_000):
                report.count(CUT_HEADERS)
            for _ in range(3):
                report.count(REFUSED)
            assert caplog.records == []  # nothing yet: the interval has not ended
            report.flush()
            report.flush()  # an interval with nothing to report logs nothing
    finally:
        loop.close()
    [record] = caplog.records
    assert f"20000 {CUT_HEADERS}" in record.getMessage()
    assert f"3 {REFUSED}" in record.getMessage()
