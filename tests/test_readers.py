"""read_file and read_file_report: one dropped file to articles, by its format."""

from __future__ import annotations

import codecs
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.article import Article
from shared.formats.mapping import UnreadableFile
from shared.formats.readers import read_file, read_file_report
from tests.conftest import FIXTURES

FORMATS = FIXTURES / "formats"


def drop(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, str):
        path.write_text(content, "utf-8")
    else:
        path.write_bytes(content)
    return path


# --- plain text -------------------------------------------------------------------------------


def test_a_text_file_has_its_first_line_as_headline_and_the_rest_as_body(tmp_path: Path) -> None:
    path = drop(
        tmp_path,
        "ferry.txt",
        "Storm closes ferry routes to the outer islands\n\n"
        "The coastguard said crossings would resume on Friday.\nSchools on two islands stay shut.\n",
    )

    [article] = read_file(path)

    assert article.title == "Storm closes ferry routes to the outer islands"
    assert article.text == "The coastguard said crossings would resume on Friday.\nSchools on two islands stay shut."
    assert article.html is None
    assert article.origin == str(path)
    assert article.source == "inbox"


def test_leading_blank_lines_and_crlf_do_not_change_the_headline(tmp_path: Path) -> None:
    path = drop(tmp_path, "dam.txt", b"\r\n\r\n  Dam inspection finds no cracks  \r\nEngineers were relieved.\r\n")

    [article] = read_file(path, source="desk")

    assert article.title == "Dam inspection finds no cracks"
    assert article.text == "Engineers were relieved."
    assert article.source == "desk"


def test_a_one_line_text_file_is_a_headline_without_body(tmp_path: Path) -> None:
    [article] = read_file(drop(tmp_path, "flash.TXT", "Parliament dissolved"))

    assert (article.title, article.text) == ("Parliament dissolved", "")


def test_an_empty_text_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="empty file"):
        read_file(drop(tmp_path, "empty.txt", b" \n\n"))


def test_a_text_file_holding_only_a_byte_order_mark_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile):
        read_file(drop(tmp_path, "notepad.txt", codecs.BOM_UTF8 + b"\r\n"))


# --- HTML -------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Rail union calls off weekend walkout | Northern Ledger</title>
<link rel="canonical" href="https://ledger.example.com/news/rail-union-walkout?ref=home&amp;x=1">
<meta property="article:published_time" content="2025-11-04T07:30:00+01:00">
</head><body><article>
<h1>Rail union calls off weekend walkout</h1>
<p>Talks with the operator ended late on Thursday with a pay offer the union will put to members.</p>
</article></body></html>
"""


def test_an_html_page_gives_url_title_and_date_from_its_head(tmp_path: Path) -> None:
    path = drop(tmp_path, "walkout.html", PAGE)

    [article] = read_file(path)

    assert article.url == "https://ledger.example.com/news/rail-union-walkout?ref=home&x=1"
    assert article.title == "Rail union calls off weekend walkout"
    assert article.published_at == datetime(2025, 11, 4, 6, 30, tzinfo=UTC)
    assert article.html == PAGE  # kept whole for the cleaner
    assert article.text == ""
    assert article.origin == str(path)


@pytest.mark.parametrize(
    ("title_tag", "expected"),
    [
        ("<title>Harbour fees frozen – Coast Times</title>", "Harbour fees frozen"),
        ("<title>Harbour fees frozen</title>", "Harbour fees frozen"),
        ("<title>\n  Harbour   fees\n frozen | Coast Times\n</title>", "Harbour fees frozen"),
        ("<title>Fish &amp; chips shop wins award | Coast Times</title>", "Fish & chips shop wins award"),
    ],
)
def test_the_site_name_is_cut_from_the_page_title(tmp_path: Path, title_tag: str, expected: str) -> None:
    page = f"<html><head>{title_tag}</head><body><p>Body text.</p></body></html>"

    [article] = read_file(drop(tmp_path, "page.htm", page))

    assert article.title == expected


def test_og_tags_win_over_title_and_a_relative_canonical_is_ignored(tmp_path: Path) -> None:
    page = """<html><head>
    <title>Something else | Coast Times</title>
    <link rel="canonical" href="/news/harbour-fees">
    <meta property="og:url" content="https://coast.example.net/news/harbour-fees">
    <meta property="og:title" content="Harbour fees frozen for a second year">
    </head><body><p>Body.</p></body></html>"""

    [article] = read_file(drop(tmp_path, "og.html", page))

    assert article.url == "https://coast.example.net/news/harbour-fees"
    assert article.title == "Harbour fees frozen for a second year"
    assert article.published_at is None


def test_an_html_page_travels_without_its_scripts_and_style_sheets_but_keeps_its_name(tmp_path: Path) -> None:
    head = (
        "<style>article { columns: 2 }</style><script>var seen = [1, 2, 3];</script>"
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "Rail talks resume"}</script>'
    )
    page = PAGE.replace("<meta charset", head + "<meta charset").replace('rel="canonical"', 'rel="alternate"')

    [article] = read_file(drop(tmp_path, "coded.html", page))

    assert article.html == page.replace("article { columns: 2 }", "").replace("var seen = [1, 2, 3];", "")
    assert article.url is None and article.title == "Rail union calls off weekend walkout"
    # without a URL an article is named by its content: the page as it came, code and all
    assert article.id == Article.create(title=article.title, html=page).id


def test_an_html_file_without_markup_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="no HTML markup"):
        read_file(drop(tmp_path, "plain.html", "Just a sentence about the harbour."))


def test_meta_and_link_tags_in_the_body_are_still_read(tmp_path: Path) -> None:
    page = """<html><head><title>Harbour news | Coast Times</title></head><body>
    <link rel="canonical" href="https://coast.example.net/news/dredging">
    <meta property="og:title" content="Dredging starts in the outer harbour">
    <meta name="date" content="2026-02-03T08:00:00Z">
    <p>The work takes six weeks.</p></body></html>"""

    [article] = read_file(drop(tmp_path, "body-meta.html", page))

    assert article.url == "https://coast.example.net/news/dredging"
    assert article.title == "Dredging starts in the outer harbour"
    assert article.published_at == datetime(2026, 2, 3, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('<meta property="og:title" content="Why a <body> scan matters">', "Why a <body> scan matters"),
        ("<meta property='og:title' content='Tides > records <body of water'>", "Tides > records <body of water"),
        ("<title>The <body> count rises | Coast Times</title>", "The <body> count rises"),
        ("<!-- <body> --><title>Quay reopens | Coast Times</title>", "Quay reopens"),
    ],
)
def test_a_body_tag_written_inside_the_head_does_not_cut_it_short(tmp_path: Path, head: str, expected: str) -> None:
    page = f"<html><head>{head}</head><body><p>The quay reopens on Monday.</p></body></html>"

    [article] = read_file(drop(tmp_path, "page.html", page))

    assert article.title == expected


# --- JSON -------------------------------------------------------------------------------------

ORCHARD = {
    "url": "https://gazette.example.org/2025/06/01/frost-orchards",
    "title": "Late frost damages orchards in the valley",
    "text": "Growers expect a smaller apple harvest after two nights below zero.",
    "published": "2025-06-01T12:00:00Z",
    "source": "Harbour Gazette",
    "guid": "gazette-4411",
}


def test_a_json_object_becomes_one_article_with_its_fields(tmp_path: Path) -> None:
    path = drop(tmp_path, "orchard.json", json.dumps(ORCHARD))

    [article] = read_file(path)

    assert article.url == ORCHARD["url"]
    assert article.title == ORCHARD["title"]
    assert article.text == ORCHARD["text"]
    assert article.guid == "gazette-4411"
    assert article.source == "Harbour Gazette"
    assert article.published_at == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert article.origin == str(path)


def test_a_json_list_becomes_one_article_per_item_in_order(tmp_path: Path) -> None:
    items = [
        {"title": "Library extends opening hours", "text": "Open until nine on weekdays."},
        {"html": "<p>New cycle lane opens on Mill Road.</p>", "published_at": "Tue, 03 Jun 2025 08:15:00 +0000"},
    ]

    first, second = read_file(drop(tmp_path, "batch.json", json.dumps(items)), source="desk")

    assert (first.title, first.text, first.source) == (
        "Library extends opening hours",
        "Open until nine on weekdays.",
        "desk",
    )
    assert second.html == "<p>New cycle lane opens on Mill Road.</p>"
    assert second.published_at == datetime(2025, 6, 3, 8, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param('{"title": "Bridge closed", ', r"^malformed JSON", id="malformed"),
        pytest.param("[1, 2", r"^malformed JSON", id="malformed-list"),
        pytest.param(
            '{"url": "https://example.com/a", "source": "Wire"}', r"has no 'text', 'html' or 'title'", id="no-content"
        ),
        pytest.param('{"title": 42}', r"field 'title' must be a string, not int", id="title-not-string"),
        pytest.param('{"title": "Ok", "url": ["https://x"]}', r"field 'url' must be a string, not list", id="url-list"),
        pytest.param('["Bridge closed"]', r"item 1 is a JSON str, not an object", id="list-of-strings"),
        pytest.param('[{"title": "Fine"}, {"text": null}]', r"^item 2 has no", id="second-item-names-its-position"),
        pytest.param("[]", r"no article found", id="empty-list"),
    ],
)
def test_json_that_is_not_an_article_is_unreadable_with_the_reason(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(UnreadableFile, match=message):
        read_file(drop(tmp_path, "bad.json", content))


# --- feeds ------------------------------------------------------------------------------------

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Valley Courier</title>
<link>https://courier.example.com/</link>
<description>Local news</description>
<item>
  <title>Council approves new bus depot</title>
  <link>https://courier.example.com/news/bus-depot</link>
  <guid isPermaLink="false">courier-1001</guid>
  <pubDate>Mon, 02 Jun 2025 09:00:00 +0000</pubDate>
  <description>The depot will house forty electric buses.</description>
</item>
<item>
  <title>River levels fall after week of rain</title>
  <link>https://courier.example.com/news/river-levels</link>
  <guid isPermaLink="false">courier-1002</guid>
  <pubDate>Tue, 03 Jun 2025 17:45:00 +0200</pubDate>
  <description>&lt;p&gt;Flood warnings were &lt;b&gt;lifted&lt;/b&gt; overnight.&lt;/p&gt;</description>
</item>
</channel></rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Coastal Monitor</title>
  <id>urn:uuid:5a1c0f3e-coastal</id>
  <updated>2025-07-10T06:00:00Z</updated>
  <entry>
    <title>Seal colony returns to the estuary</title>
    <link href="https://monitor.example.org/seals"/>
    <id>urn:uuid:entry-seals</id>
    <published>2025-07-09T05:30:00Z</published>
    <updated>2025-07-09T06:00:00Z</updated>
    <summary>Rangers counted more than two hundred animals.</summary>
  </entry>
  <entry>
    <title>Beach cleanup collects a tonne of plastic</title>
    <link href="https://monitor.example.org/cleanup"/>
    <id>urn:uuid:entry-cleanup</id>
    <updated>2025-07-10T04:00:00Z</updated>
    <content type="html">&lt;p&gt;Volunteers worked along six kilometres of sand.&lt;/p&gt;</content>
  </entry>
</feed>
"""


@pytest.mark.parametrize("suffix", [".rss", ".xml"])
def test_an_rss_file_gives_one_article_per_item(tmp_path: Path, suffix: str) -> None:
    path = drop(tmp_path, f"courier{suffix}", RSS)

    depot, river = read_file(path)

    assert depot.title == "Council approves new bus depot"
    assert depot.guid == "courier-1001"
    assert depot.url == "https://courier.example.com/news/bus-depot"
    assert depot.published_at == datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
    assert depot.text == "The depot will house forty electric buses." and depot.html is None
    assert depot.source == "Valley Courier"
    assert depot.origin == str(path)
    assert river.guid == "courier-1002"
    assert river.published_at == datetime(2025, 6, 3, 15, 45, tzinfo=UTC)
    assert river.html is not None and "lifted" in river.html and river.text == ""


def test_an_atom_file_gives_one_article_per_entry(tmp_path: Path) -> None:
    seals, cleanup = read_file(drop(tmp_path, "monitor.atom", ATOM))

    assert seals.title == "Seal colony returns to the estuary"
    assert seals.guid == "urn:uuid:entry-seals"
    assert seals.url == "https://monitor.example.org/seals"
    assert seals.published_at == datetime(2025, 7, 9, 5, 30, tzinfo=UTC)  # published wins over updated
    assert seals.text == "Rangers counted more than two hundred animals."
    assert {seals.source, cleanup.source} == {"Coastal Monitor"}
    assert cleanup.published_at == datetime(2025, 7, 10, 4, 0, tzinfo=UTC)  # only updated
    assert cleanup.html is not None and "six kilometres" in cleanup.html


def test_a_feed_without_a_title_takes_the_given_source(tmp_path: Path) -> None:
    feed = RSS.replace("<title>Valley Courier</title>", "")

    articles = read_file(drop(tmp_path, "untitled.rss", feed), source="desk")

    assert {article.source for article in articles} == {"desk"}


def test_a_feed_without_entries_is_unreadable(tmp_path: Path) -> None:
    empty = '<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    with pytest.raises(UnreadableFile, match="feed has no entries"):
        read_file(drop(tmp_path, "quiet.rss", empty))


def test_a_feed_file_that_is_not_xml_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="^malformed feed"):
        read_file(drop(tmp_path, "notes.atom", "<<< this is not a feed >>>"))


# --- Markdown ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_lines", "title"),
    [
        pytest.param("# Tram line extended to the hospital\n", "Tram line extended to the hospital", id="atx"),
        pytest.param("  ## Tram line extended to the hospital ##\n", "Tram line extended to the hospital", id="closed"),
        pytest.param("Tram line extended to the hospital\n===\n", "Tram line extended to the hospital", id="setext"),
        pytest.param("Tram line extended to the hospital\n", "Tram line extended to the hospital", id="plain"),
        pytest.param("#tram line extended\n", "#tram line extended", id="hashtag-is-no-heading"),
    ],
)
def test_a_markdown_file_takes_its_heading_as_headline(tmp_path: Path, first_lines: str, title: str) -> None:
    body = "The **new stop** opens in May.\n\n- six trams an hour\n- step-free platforms"

    [article] = read_file(drop(tmp_path, "tram.md", f"\n{first_lines}\n{body}\n"))

    assert article.title == title
    assert article.text == body  # Markdown left as is for the cleaner
    assert article.html is None


def test_a_markdown_file_with_only_a_heading_is_a_headline_without_body(tmp_path: Path) -> None:
    [article] = read_file(drop(tmp_path, "flash.MD", "# Polls close in the north"))

    assert (article.title, article.text) == ("Polls close in the north", "")


# --- JSON lines -------------------------------------------------------------------------------

MARKET = {"title": "Covered market reopens after repairs", "text": "Forty stalls are back.", "guid": "m-1"}
FERRY = {"title": "Night ferry timetable changes", "url": "https://port.example.com/ferry", "published": "2025-09-01"}


def jsonl(*lines: object) -> str:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"


def test_good_json_lines_become_articles_and_bad_ones_are_reported_by_number(tmp_path: Path) -> None:
    path = drop(tmp_path, "wire.jsonl", jsonl(MARKET, '{"title": "Cut off', FERRY, {"text": None}))

    reading = read_file_report(path, source="desk")

    assert [article.title for article in reading.articles] == [MARKET["title"], FERRY["title"]]
    assert reading.articles[0].guid == "m-1" and reading.articles[0].source == "desk"
    assert reading.articles[1].published_at == datetime(2025, 9, 1, tzinfo=UTC)
    assert {article.origin for article in reading.articles} == {str(path)}
    assert [number for number, _ in reading.problems] == [2, 4]
    assert reading.problems[0][1].startswith("malformed JSON")
    assert reading.problems[1][1] == "the line has no 'text', 'html' or 'title'"
    assert reading.bad_lines == {2: '{"title": "Cut off', 4: '{"text": null}'}
    assert [article.title for article in read_file(path)] == [MARKET["title"], FERRY["title"]]  # good lines only


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        pytest.param("{oops}", r"^malformed JSON: .* at column 2$", id="malformed"),
        pytest.param('["a list"]', r"^the line is a JSON list, not an object$", id="list"),
        pytest.param('"a string"', r"^the line is a JSON str, not an object$", id="string"),
        pytest.param("17", r"^the line is a JSON int, not an object$", id="number"),
        pytest.param(
            '{"url": "https://example.com/x"}', r"^the line has no 'text', 'html' or 'title'$", id="no-content"
        ),
        pytest.param(
            '{"title": "Ok", "guid": 7}', r"^the line: field 'guid' must be a string, not int$", id="guid-int"
        ),
    ],
)
def test_each_kind_of_bad_json_line_is_reported_with_its_reason(tmp_path: Path, bad_line: str, reason: str) -> None:
    reading = read_file_report(drop(tmp_path, "wire.jsonl", jsonl(MARKET, bad_line)))

    [(number, said)] = reading.problems
    assert number == 2
    assert re.match(reason, said), said
    assert len(reading.articles) == 1


def test_blank_lines_are_skipped_but_still_counted_in_line_numbers(tmp_path: Path) -> None:
    reading = read_file_report(drop(tmp_path, "wire.ndjson", jsonl("", MARKET, "   ", "\t", "nope", FERRY, "")))

    assert len(reading.articles) == 2
    assert reading.problems == [(5, "malformed JSON: Expecting value at column 1")]


def test_crlf_and_byte_order_marks_do_not_make_json_lines_bad(tmp_path: Path) -> None:
    # Written on Windows, then two such files concatenated: a BOM at the start and one inside.
    part = codecs.BOM_UTF8 + json.dumps(MARKET).encode() + b"\r\n"
    data = part + part.replace(b'"m-1"', b'"m-2"') + b"\r\n"

    reading = read_file_report(drop(tmp_path, "wire.jsonl", data))

    assert reading.problems == []
    assert [article.guid for article in reading.articles] == ["m-1", "m-2"]
    assert reading.articles[0].text == "Forty stalls are back."


def test_a_line_separator_inside_a_json_string_does_not_split_the_line(tmp_path: Path) -> None:
    story = {"title": "Choir wins regional final", "text": "First verse\u2028second verse"}
    raw = json.dumps(story, ensure_ascii=False)

    [article] = read_file(drop(tmp_path, "choir.jsonl", raw))

    assert article.text == "First verse\u2028second verse"


def test_a_json_lines_file_without_a_good_line_is_unreadable_naming_the_first_problems(tmp_path: Path) -> None:
    path = drop(tmp_path, "bad.jsonl", jsonl("{", "[]", '{"title": 1}', "null", "x"))

    with pytest.raises(UnreadableFile) as raised:
        read_file_report(path)

    message = str(raised.value)
    assert message.startswith("no good line in the file: line 1: malformed JSON")
    assert "line 2: the line is a JSON list" in message and "line 3: the line: field 'title'" in message
    assert "line 4" not in message and message.endswith("; and 2 more")


def test_a_json_lines_file_of_blank_lines_is_empty(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="empty file"):
        read_file(drop(tmp_path, "blank.jsonl", "\n  \n\r\n"))


# --- e-mail -----------------------------------------------------------------------------------


def test_an_email_alert_takes_its_html_part_subject_date_sender_and_message_id() -> None:
    path = FORMATS / "alert.eml"

    [article] = read_file(path)

    assert article.title == "Breaking: Café strike closes the harbour front"  # RFC 2047 decoded
    assert article.html is not None
    assert "<h1>Café strike closes the harbour front</h1>" in article.html  # quoted-printable decoded
    assert "harbour front are shut" in article.html  # soft line break joined
    assert article.text == ""
    assert article.published_at == datetime(2025, 10, 14, 4, 45, tzinfo=UTC)
    assert article.source == "Harbour Gazette Alerts"
    assert article.guid == "alert-7731@gazette.example.org"
    assert article.origin == str(path)


def test_an_email_with_only_a_text_part_gives_text_in_its_declared_charset() -> None:
    [article] = read_file(FORMATS / "bulletin.eml", source="desk")

    assert article.title == "Valley bulletin: Sainte-Cecile bridge reopens on Monday"
    assert article.text == (
        "Le pont de Sainte-Cécile rouvre lundi après six semaines de travaux.\n"
        "The road authority says lorries stay banned until the spring."
    )
    assert article.html is None
    assert article.source == "bulletin@valley.example.net"  # no display name: the address
    assert article.published_at == datetime(2025, 10, 15, 17, 20, tzinfo=UTC)


def test_an_email_with_an_unknown_charset_is_still_decoded(tmp_path: Path) -> None:
    message = (
        b"From: Desk <desk@example.org>\r\nSubject: Pier reopens\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nThe pier reopens at noon.\r\n"
    )

    [article] = read_file(drop(tmp_path, "pier.eml", message))

    assert article.text == "The pier reopens at noon."
    assert article.published_at is None and article.guid is None


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param(
            b"From: Desk <desk@example.org>\r\nSubject: Pier reopens\r\n\r\n \r\n",
            r"^no text or HTML body in the e-mail$",
            id="no-body",
        ),
        pytest.param(
            b"Subject: Minutes\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: application/pdf\r\nContent-Disposition: attachment\r\n\r\nJVBERi0=\r\n--b--\r\n",
            r"^no text or HTML body in the e-mail \(only application/pdf\)$",
            id="attachment-only",
        ),
        pytest.param(b"Just a note about the pier.\r\n", r"^not an e-mail message", id="no-headers"),
        pytest.param(b"\r\n \r\n", r"^empty file$", id="empty"),
    ],
)
def test_an_email_without_a_readable_body_is_unreadable_with_the_reason(
    tmp_path: Path, message: bytes, reason: str
) -> None:
    with pytest.raises(UnreadableFile, match=reason):
        read_file(drop(tmp_path, "mail.eml", message))


# --- unsupported ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "named"), [("minutes.docx", "'.docx'"), ("scan.PDF", "'.PDF'"), ("README", "(none)")])
def test_an_unsupported_suffix_is_unreadable_and_named(tmp_path: Path, name: str, named: str) -> None:
    with pytest.raises(UnreadableFile, match="unsupported file type") as raised:
        read_file(drop(tmp_path, name, "Council minutes for June."))

    assert named in str(raised.value)
    assert ".txt" in str(raised.value)  # says what would work


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("deep.json", "[" * 50_000 + "]" * 50_000),
        ("deep.jsonl", '{"title": "x", "text": ' + "[" * 50_000 + "]" * 50_000 + "}\n"),
    ],
)
def test_a_file_nested_too_deeply_is_refused_in_words(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, "utf-8")
    try:
        reading = read_file_report(path)
    except UnreadableFile as error:  # a lines file is refused whole only when no line is good
        assert str(error).startswith("nested too deeply") or "line 1: nested too deeply" in str(error)
    else:  # a lines file keeps going: the line is a problem, said in words
        assert any("nested too deeply" in reason for _, reason in reading.problems)
