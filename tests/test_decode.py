"""decode_text: bytes of a dropped file to text, whatever common encoding they arrived in."""

from __future__ import annotations

import codecs

import pytest

from shared.formats.decode import decode_text
from shared.formats.mapping import UnreadableFile

CURLY = "\u201cWe will not back down,\u201d the minister said of the \u20ac4bn plan \u2013 a first for the port."
FRENCH = "Les élèves du lycée ont été reçus à l'hôtel de ville mercredi après la grève des transports."


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            b"Port workers end strike after three days\n", "Port workers end strike after three days\n", id="ascii"
        ),
        pytest.param(
            "Café owners in Zürich protest the new terrace tax".encode(),
            "Café owners in Zürich protest the new terrace tax",
            id="utf-8",
        ),
        pytest.param(
            codecs.BOM_UTF8 + "Café owners protest the new terrace tax".encode(),
            "Café owners protest the new terrace tax",
            id="utf-8-bom-dropped",
        ),
        pytest.param(
            "Zürich council approves the lake tram line".encode("utf-16"),
            "Zürich council approves the lake tram line",
            id="utf-16-native-bom",
        ),
        pytest.param(
            codecs.BOM_UTF16_LE + "Ferry fares rise by 4 € from May".encode("utf-16-le"),
            "Ferry fares rise by 4 € from May",
            id="utf-16-le-bom",
        ),
        pytest.param(
            codecs.BOM_UTF16_BE + "Ferry fares rise by 4 € from May".encode("utf-16-be"),
            "Ferry fares rise by 4 € from May",
            id="utf-16-be-bom",
        ),
        pytest.param(CURLY.encode("cp1252"), CURLY, id="cp1252-curly-quotes-euro-dash"),
        pytest.param(FRENCH.encode("latin-1"), FRENCH, id="latin-1-french-sentence"),
        pytest.param(FRENCH.encode("cp1252"), FRENCH, id="cp1252-french-sentence"),
    ],
)
def test_common_encodings_decode_to_the_original_text(data: bytes, expected: str) -> None:
    assert decode_text(data) == expected


@pytest.mark.parametrize(
    "headline",
    [
        pytest.param(
            "Grève générale à Genève",
            id="greve-generale",
        ),
        pytest.param(
            "Déjà vu à Besançon",
            id="deja-vu",
        ),
        pytest.param("Hausse des prix à l'été", id="few-accents"),
    ],
)
def test_a_short_latin_1_french_headline_keeps_its_accents(headline: str) -> None:
    assert decode_text(headline.encode("latin-1")) == headline


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            b"Bridge reopens\r\nTraffic flows again.\r\n", "Bridge reopens\nTraffic flows again.\n", id="crlf"
        ),
        pytest.param(b"Bridge reopens\rTraffic flows again.\r", "Bridge reopens\nTraffic flows again.\n", id="lone-cr"),
        pytest.param(b"One\r\nTwo\rThree\nFour", "One\nTwo\nThree\nFour", id="mixed"),
        pytest.param(b"Blank lines\r\n\r\nstay", "Blank lines\n\nstay", id="crlf-blank-line"),
        pytest.param("Tram\r\nline".encode("utf-16"), "Tram\nline", id="utf-16-crlf"),
        pytest.param("Grève\r\nfinie à l'aube".encode("cp1252"), "Grève\nfinie à l'aube", id="cp1252-crlf"),
    ],
)
def test_line_ends_become_newlines(data: bytes, expected: str) -> None:
    text = decode_text(data)
    assert text == expected
    assert "\r" not in text


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="no-bytes"),
        pytest.param(b"   ", id="spaces"),
        pytest.param(b"\r\n\t \n\x0c", id="whitespace-and-line-ends"),
        pytest.param(
            codecs.BOM_UTF8,
            id="utf-8-bom-only",
        ),
        pytest.param(
            codecs.BOM_UTF8 + b" \r\n",
            id="utf-8-bom-and-whitespace",
        ),
        pytest.param(
            "  \n".encode("utf-16"),
            id="utf-16-whitespace",
        ),
    ],
)
def test_an_empty_or_whitespace_only_file_is_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableFile, match=r"^empty file"):
        decode_text(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00", id="png-header"),
        pytest.param(b"Council minutes\x00\x00\x00page two", id="nul-inside-text"),
        pytest.param(b"\x00" * 16, id="only-nuls"),
        pytest.param(bytes(range(1, 9)) * 20, id="control-characters-without-nul"),
    ],
)
def test_binary_content_is_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableFile, match="binary"):
        decode_text(data)


def test_a_few_tabs_and_form_feeds_are_still_text() -> None:
    text = "Budget vote\tpostponed\fagain after a late amendment from the opposition benches."
    assert decode_text(text.encode()) == text


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Северная Корея провела испытание баллистической ракеты в пятницу утром.", "cp1251"),
        ("Η Βόρεια Κορέα εκτόξευσε πύραυλο σήμερα το πρωί.", "cp1253"),
    ],
)
def test_legacy_non_latin_code_pages_are_detected(text: str, encoding: str) -> None:
    assert decode_text(text.encode(encoding)) == text


def test_control_characters_crowding_the_start_of_a_long_text_are_still_binary() -> None:
    # Under 1 % of the 64 KB sample, but well over 1 % of the first 4,096 characters.
    data = b"\x01\x02" * 30 + b"The council meets on Tuesday. " * 3000

    with pytest.raises(UnreadableFile, match="binary"):
        decode_text(data)


def test_text_without_control_bytes_decodes_as_before() -> None:
    text = "Caf\u00e9 owners on the quay\r\nwelcome the new market.\rStalls open at eight."

    assert decode_text(text.encode("utf-8")) == text.replace("\r\n", "\n").replace("\r", "\n")
    assert decode_text(text.encode("cp1252")) == text.replace("\r\n", "\n").replace("\r", "\n")
