"""Bytes to text for dropped files, whatever common encoding they arrived in."""

from __future__ import annotations

import codecs
import re
import sys

import charset_normalizer

from shared.formats.mapping import UnreadableFile

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


_ALWAYS_BINARY = sys.maxsize
_BOM_BYTES = tuple(bom for bom, _ in _BOMS)
DETECTION_SAMPLE_BYTES = 64 * 1024  # charset detection reads this much, never the whole file
_HIGH_BYTES = bytes(range(0x80, 0x100))
_CONTROL_BYTES = bytes(byte for byte in range(32) if chr(byte) not in "\n\r\t\f") + b"\x7f"


def looks_binary(data: bytes) -> bool:
    """Whether bytes are binary, not text in any encoding we read: NUL bytes, or more than a
    few control characters, in the first 64 KB (text in UTF-16 or UTF-32 must carry its BOM)."""
    return _too_many(_control_bytes(data), data)


def _too_many(controls: int | None, data: bytes) -> bool:
    return controls is not None and controls > max(2, min(len(data), DETECTION_SAMPLE_BYTES) // 100)


def _control_bytes(data: bytes) -> int | None:
    """How many control bytes the first 64 KB hold (any NUL makes it binary whatever the
    count); None for text that starts with a BOM, which is read by it instead."""
    if data.startswith(_BOM_BYTES):
        return None
    sample = data[:DETECTION_SAMPLE_BYTES]
    if b"\x00" in sample:
        return _ALWAYS_BINARY
    return len(sample) - len(sample.translate(None, _CONTROL_BYTES))


def decode_text(data: bytes) -> str:
    """Decode a text file: a BOM wins, then UTF-8, then cp1252/Latin-1 for Western text with
    a few accented bytes, then charset detection (on a sample, so its time is bounded); line
    ends become `\\n`. Binary content is refused before any of that."""
    if not data.strip():
        raise UnreadableFile("empty file")
    controls = _control_bytes(data)
    if _too_many(controls, data):
        raise UnreadableFile("binary content, not text")
    text, byte_for_byte = _decode(data)
    if not text.strip():  # a byte-order mark and white space only
        raise UnreadableFile("empty file")
    # UTF-8, cp1252 and Latin-1 make control characters of control bytes alone, and the text's
    # first 4,096 characters come from the 64 KB sample: without control bytes there, the text
    # holds none to count.
    if not (byte_for_byte and controls == 0) and _looks_binary(text):
        raise UnreadableFile("binary content, not text")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _decode(data: bytes) -> tuple[str, bool]:
    """The text, and whether its encoding maps control characters to the same bytes only
    (UTF-8, cp1252, Latin-1)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), False
            except UnicodeDecodeError as error:
                raise UnreadableFile(f"not valid {encoding} despite its byte-order mark: {error}") from None
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        pass
    high = (len(data) - len(data.translate(None, _HIGH_BYTES))) / len(data)
    if high < 0.4:
        # Western text: accented letters and typographic quotes among mostly ASCII (even a
        # short French headline stays under 40 %; Cyrillic, Greek or CJK legacy text is far
        # above). cp1252 is what "Latin-1" files really are; it leaves five bytes undefined,
        # which Latin-1 takes.
        try:
            return data.decode("cp1252"), True
        except UnicodeDecodeError:
            return data.decode("latin-1"), True
    sample = data[:DETECTION_SAMPLE_BYTES]
    if len(data) > len(sample):  # end the sample at a line end, not inside a character
        cut = sample.rfind(b"\n")
        sample = sample[: cut + 1] if cut > len(sample) // 2 else sample
    best = charset_normalizer.from_bytes(sample).best()
    if best is None or best.encoding is None:
        raise UnreadableFile("undecodable: not UTF-8 and no known character encoding fits")
    return data.decode(best.encoding, errors="replace"), False


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")  # below space, but not \t \n \f \r


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    if _CONTROL_CHARS.search(sample) is None:  # the usual case, in one pass in C
        return False
    controls = len(_CONTROL_CHARS.findall(sample))
    return controls > max(2, len(sample) // 100)
