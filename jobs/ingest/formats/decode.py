"""Turning submitted bytes into text: BOMs, UTF-8 with a Latin-1 fallback, binary detection."""

from __future__ import annotations

from jobs.ingest.formats.base import FileRejected


def check_text_bytes(data: bytes) -> None:
    """Reject empty and binary files with a clear rule, without decoding the whole file.

    A NUL byte, or a high share of control bytes, means the file is not text (a spreadsheet,
    a zip, an image) and is rejected as ``file_binary``.
    """
    if not data[:65536].strip() and not data.strip():  # look at the whole file only if its start is blank
        raise FileRejected("file_empty", "the file is empty")
    sample = data[:65536]
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 13, 12))
    if b"\x00" in sample or controls > len(sample) * 0.05:
        raise FileRejected("file_binary", "the file is not text (binary content); send the text export the "
                           "feed spec names")


def decode_text(data: bytes, encodings: list[str] | tuple[str, ...] = ("utf-8", "latin-1")) -> tuple[str, str]:
    """Return (text, encoding used). Rejects empty and binary files with a clear rule."""
    check_text_bytes(data)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for enc in encodings:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise FileRejected("file_encoding", f"the file is not in an accepted encoding ({', '.join(encodings)})")
