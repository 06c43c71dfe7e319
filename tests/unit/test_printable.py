"""Human CLI output escapes what a terminal would act on rather than show."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from entrypoints.commands import printable

ACTED_ON = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@given(st.text(max_size=50))
def test_any_text_prints_as_one_line_of_visible_characters(text: str) -> None:
    shown = printable(text)
    assert not ACTED_ON.search(shown)
    assert len(shown.splitlines()) <= 1
    shown.encode("utf-8")  # no lone surrogate left either


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=50))
def test_text_without_controls_is_printed_as_it_is(text: str) -> None:
    text = "".join(c for c in text if c not in "\u061c\u200e\u200f\u2028\u2029")
    text = re.sub("[\u202a-\u202e\u2066-\u2069]", "", text)
    assert printable(text) == text


def test_escapes_are_spelled_as_in_python() -> None:
    assert printable("a\nb\r\tc\x1b[0m\x85\u2028") == "a\\nb\\r\\tc\\x1b[0m\\x85\\u2028"
