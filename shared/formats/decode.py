"""Bytes to text for dropped files, whatever common encoding they arrived in."""

from __future__ import annotations

import codecs
import re

import charset_normalizer

from shared.formats.mapping import UnreadableFile

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


DETECTION_SAMPLE_BYTES = 64 * 1024  # charset detection reads this much, never the whole file
_HIGH_BYTES = bytes(range(0x80, 0x100))
_CONTROL_BYTES = bytes(byte for byte in range(32) if chr(byte) not in "\n\r\t\f") + b"\x7f"


def looks_binary(data: bytes) -> bool:
    """Whether bytes are binary, not text in any encoding we read: NUL bytes, or more than a
    few control characters, in the first 64 KB (text in UTF-16 or UTF-32 must carry its BOM)."""
    if data.startswith(tuple(bom for bom, _ in _BOMS)):
        return False
    sample = data[:DETECTION_SAMPLE_BYTES]
    if b"\x00" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > max(2, len(sample) // 100)


def decode_text(data: bytes) -> str:
    """Decode a text file: a BOM wins, then UTF-8, then cp1252/Latin-1 for Western text with
    a few accented bytes, then charset detection (on a sample, so its time is bounded); line
    ends become `\\n`. Binary content is refused before any of that."""
    if not data.strip():
        raise UnreadableFile("empty file")
    if looks_binary(data):
        raise UnreadableFile("binary content, not text")
    text = _decode(data)
    if not text.strip():  # a byte-order mark and white space only
        raise UnreadableFile("empty file")
    if _looks_binary(text):
        raise UnreadableFile("binary content, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as error:
                raise UnreadableFile(f"not valid {encoding} despite its byte-order mark: {error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    high = (len(data) - len(data.translate(None, _HIGH_BYTES))) / len(data)
    if high < 0.4:
        # Western text: accented letters and typographic quotes among mostly ASCII (even a
        # short French headline stays under 40 %; Cyrillic, Greek or CJK legacy text is far
        # above). cp1252 is what "Latin-1" files really are; it leaves five bytes undefined,
        # which Latin-1 takes.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    sample = data[:DETECTION_SAMPLE_BYTES]
    if len(data) > len(sample):  # end the sample at a line end, not inside a character
        cut = sample.rfind(b"\n")
        sample = sample[: cut + 1] if cut > len(sample) // 2 else sample
    best = charset_normalizer.from_bytes(sample).best()
    if best is None or best.encoding is None:
        raise UnreadableFile("undecodable: not UTF-8 and no known character encoding fits")
    return data.decode(best.encoding, errors="replace")


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")  # below space, but not \t \n \f \r


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    if _CONTROL_CHARS.search(sample) is None:  # the usual case, in one pass in C
        return False
    controls = len(_CONTROL_CHARS.findall(sample))
    return controls > max(2, len(sample) // 100)
