"""Splitting decoded text into physical lines the way submitters' editors count them."""

from __future__ import annotations

import re

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Physical lines without their breaks (CRLF, LF or a lone CR); no empty last line."""
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        lines = LINE_BREAK.split(text)
    else:
        lines = text.split("\n")
        if "\r" in text:
            lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if lines and lines[-1] == "":
        lines.pop()
    return lines
