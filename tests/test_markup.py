"""without_code: a page less the code in its scripts and style sheets, parsing to the same tree."""

from __future__ import annotations

import random

import lxml.etree
import pytest

from shared.formats.markup import without_code
from shared.pipeline.extract import extract_main_text

_PARSER = lxml.etree.HTMLParser(encoding="utf-8", recover=True, no_network=True)


def tree_less_code(page: str) -> str:
    """The page's tree as lxml parses it, with the text of every script and style sheet but
    JSON-LD emptied: what a page less its code must still parse to."""
    root = lxml.etree.fromstring(page.encode("utf-8"), _PARSER)
    for element in root.iter("script", "style"):
        if "ld+json" not in (element.get("type") or "").lower():
            element.text = None
    return lxml.etree.tostring(root, encoding="unicode")


STORY = """<!DOCTYPE html><html><head><title>Ferry timetable changes | Island Post</title>
<style>.lead { font-size: 120% } p > a { color: red }</style>
<script>window.track = function(a, b) { return a < b && "</p>"; };</script>
<script type="application/ld+json">{"@type": "NewsArticle", "author": {"name": "Ines Moreau"}}</script>
</head><body><article><h1>Ferry timetable changes</h1>
<p>The winter timetable adds an early crossing on weekdays, the operator said on Tuesday.</p>
<script>document.write('<p>Advert</p>');</script>
<p>Passengers asked for the change after the evening boat was cut last year.</p>
<STYLE type="text/css">#x { display: none }</STYLE>
<p>Fares stay the same until April, when the island council reviews them again.</p>
</article></body></html>"""


def test_the_code_goes_and_everything_else_stays_byte_for_byte() -> None:
    kept = without_code(STORY)

    assert "window.track" not in kept and "font-size" not in kept and "document.write" not in kept
    assert "display: none" not in kept
    assert '"author": {"name": "Ines Moreau"}' in kept  # JSON-LD describes the article
    assert "<script></script>" in kept and '<STYLE type="text/css"></STYLE>' in kept
    assert kept.replace("<script></script>", "") == (
        STORY.replace('<script>window.track = function(a, b) { return a < b && "</p>"; };</script>', "")
        .replace("<script>document.write('<p>Advert</p>');</script>", "")
        .replace(".lead { font-size: 120% } p > a { color: red }", "")
        .replace("#x { display: none }", "")
    )
    assert tree_less_code(kept) == tree_less_code(STORY)


def test_the_main_text_and_metadata_read_from_the_page_do_not_change() -> None:
    assert extract_main_text(without_code(STORY)) == extract_main_text(STORY)


@pytest.mark.parametrize(
    "page",
    [
        # not scripts: inside a comment, an attribute value, a title, a textarea, a bogus comment
        '<p>a</p><!-- <script>x</script> --><p title="<script>">b</p><title><script></title><p>c</p>',
        "<textarea><style></textarea><p>kept</p><style>p{}</style><? <script> ?><p>d</p>",
        "</ <script>x<p>e</p><script>code</script>",
        # a quote opens a value only after "=": here the tag ends at the first ">"
        '<p a=b"c <script>x</script>q>t</p><div "a=<script>y</script>>u</div><script>code</script>',
        # a "<!--" escape in a script can hold a <script>...</script> that does not end it
        "<script><!-- <script>x</script> still code --></script><p>after</p><script>code</script>",
        "<script><!--> plain again </script><p>after</p>",
        "<script>a<!-- b --> c</script><p>after</p><script>d<!--<script></script><p>in</p>",
        # self-closing: an empty element, what follows is markup
        "<script/><p>a</p></script><p>b</p><script src=x/>code</script><p>c</p>",
        # names that only look alike, and end tags that are not
        "<scripts>a</scripts><script>b</scripts>c</script\x0b>d</script ><p>e</p>",
        "<SCRIPT type='a>b'>code</ScRiPt><p>f</p><ſcript>g</ſcript>",
        # left open to the end of the page
        "<p>a</p><script>code",
        '<p>a</p><div class="x',
        "<p>a</p><!-- <script>x</script>",
        "<plaintext><script>x</script>",
        "<xmp><script>x</xmp><iframe><style>y</iframe><noembed><script></noembed><noframes></noframes><p>z</p>",
    ],
)
def test_only_what_a_parser_reads_as_script_or_style_text_goes(page: str) -> None:
    page = f"<html><body>{page}</body></html>"

    assert tree_less_code(without_code(page)) == tree_less_code(page)


def test_a_page_without_code_is_returned_as_it_is() -> None:
    page = "<html><body><p>No scripts here.</p></body></html>"

    assert without_code(page) is page


SNIPPETS = [
    "<script>", "</script>", "<style>", "</style >", "<!--", "-->", "--!>", "<!-->", '"', "'", "=", "<title>",
    "</title>", "<textarea>", "</textarea>", "<xmp>", "</xmp>", "<!DOCTYPE x>", "<?x?>", "</ x>", "</>", "<", ">",
    "/>", "/", " ", "a=", '<div a="', "<p b='", "<SCRIPT/>", "<script src=x/>", "<scripts>", "\n", "<a", "</a",
]  # fmt: skip


def test_pages_with_markup_broken_at_random_parse_to_the_same_tree() -> None:
    rng = random.Random(17)
    for _ in range(400):
        page = STORY
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(page) + 1)
            page = page[:at] + rng.choice(SNIPPETS) + page[at:]

        assert tree_less_code(without_code(page)) == tree_less_code(page), page
