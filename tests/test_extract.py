"""extract: the article body of a news page, without the page around it, and its metadata."""

from __future__ import annotations

import pytest

from shared.pipeline import extract as extract_module
from shared.pipeline.extract import Extraction, extract_main_text

METHODS = {"container", "trafilatura", "trafilatura-default", "readability+trafilatura"}

HEADLINE = "Harbour authority approves night ferry service after two-year trial"

BODY = [
    "The harbour authority voted on Thursday to make the night ferry between the old port and the "
    "island of Kessel a permanent service, ending a two-year trial that carried more than 80,000 passengers.",
    "Under the plan approved by the board, boats will leave the old port every 40 minutes between 10pm "
    "and 2am from the first week of March, with a reduced timetable on Sunday nights.",
    "Board members said the trial had cut late-night traffic on the causeway by almost a fifth and that "
    "fares would stay at their current level until at least the end of next year.",
    "Residents of the island had campaigned for the service since the last bus connection was withdrawn, "
    "saying that shift workers at the hospital and the container terminal had no way to get home.",
    "The operator, which runs four vessels on the route, said it would hire twelve more crew members "
    "and refit its oldest boat to reduce engine noise near the residential quays.",
    "A public consultation on the winter timetable will open next month, the authority said.",
]

NAV = ["Home", "World", "Business", "Sport", "Subscribe now"]
COOKIE = "We use cookies to improve your experience and to show you personalised advertising. Accept all cookies"
RELATED = [
    "Council rejects plan for second causeway lane",
    "Fishing fleet hit by record fuel prices this winter",
    "Island school reopens after storm repairs are finished",
]
COMMENTS = [
    "Finally! I have been waiting for this for years, the last bus was a disgrace for everyone on the island.",
    "Who is going to pay for the extra crew? Our taxes, as always, and nobody asked us about it.",
]
FOOTER = "Copyright 2024 The Harbour Gazette. All rights reserved. Contact us | Privacy policy | Terms of use"


def news_page(*, body: list[str] = BODY, headline: str = HEADLINE) -> str:
    paragraphs = "\n".join(f"<p>{paragraph}</p>" for paragraph in body)
    nav = "".join(f'<li><a href="/{item.lower()}">{item}</a></li>' for item in NAV)
    related = "".join(f'<li><a href="/story/{i}">{title}</a></li>' for i, title in enumerate(RELATED))
    comments = "".join(
        f'<li class="comment"><span class="comment-author">reader{i}</span><p>{text}</p></li>'
        for i, text in enumerate(COMMENTS)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{headline} | The Harbour Gazette</title>
  <meta property="og:title" content="{headline}">
  <meta name="author" content="Maria Jensen">
  <meta property="article:published_time" content="2024-03-07T09:15:00+00:00">
  <meta property="og:type" content="article">
</head>
<body>
  <div id="cookie-banner" class="cookie-consent">{COOKIE}</div>
  <header class="site-header"><a href="/" class="logo">The Harbour Gazette</a>
    <nav class="main-nav"><ul>{nav}</ul></nav>
  </header>
  <main>
    <article class="story">
      <h1>{headline}</h1>
      <p class="byline">By Maria Jensen, March 7, 2024</p>
      <div class="story-body">
{paragraphs}
      </div>
    </article>
    <aside class="related-stories"><h2>Related stories</h2><ul>{related}</ul></aside>
    <section id="comments" class="comments"><h2>2 comments</h2><ol>{comments}</ol></section>
  </main>
  <footer class="site-footer"><p>{FOOTER}</p></footer>
</body>
</html>"""


# --- the body is kept, the page around it dropped -----------------------------------------------


def test_article_body_is_kept_and_page_furniture_dropped() -> None:
    result = extract_main_text(news_page(), "https://gazette.example/harbour/night-ferry")

    assert isinstance(result, Extraction)
    for paragraph in BODY:
        assert paragraph in result.text
    for furniture in [*NAV, COOKIE, *RELATED, FOOTER]:
        assert furniture not in result.text
    assert "Related stories" not in result.text


def test_reader_comments_are_left_out() -> None:
    result = extract_main_text(news_page())

    assert result.text
    for comment in COMMENTS:
        assert comment not in result.text
    assert "2 comments" not in result.text


def test_paragraphs_are_separated_by_blank_lines_in_order() -> None:
    result = extract_main_text(news_page())

    paragraphs = result.text.split("\n\n")
    assert all(paragraph.strip() == paragraph and paragraph for paragraph in paragraphs)
    positions = [result.text.index(paragraph) for paragraph in BODY]
    assert positions == sorted(positions)


def test_method_is_recorded() -> None:
    assert extract_main_text(news_page()).method in METHODS


def test_headline_is_not_repeated_at_the_top_of_the_text() -> None:
    result = extract_main_text(news_page())

    assert result.title == HEADLINE
    assert not result.text.startswith(HEADLINE)
    assert result.text.startswith(BODY[0])


# --- metadata from the page's meta tags ---------------------------------------------------------


def test_title_date_and_author_come_from_meta_tags() -> None:
    result = extract_main_text(news_page(), "https://gazette.example/harbour/night-ferry")

    assert result.title == HEADLINE
    assert result.published is not None and result.published.startswith("2024-03-07")
    assert result.author == "Maria Jensen"


def test_missing_metadata_is_none() -> None:
    page = "<html><body><article>" + "".join(f"<p>{p}</p>" for p in BODY) + "</article></body></html>"
    result = extract_main_text(page)

    assert BODY[0] in result.text
    assert result.author is None


# --- never raises ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   \n\t ",
        "<html></html>",
        "<html><head><title>Only a title</title></head><body></body></html>",
        "<<<>>> </div></div></p> &&&;; <",
        "\x00\x01\x02 not html at all \x00",
        "<?xml version='1.0' encoding='utf-8'?><rss><channel><item>x</item></channel></rss>",
        "<div>" * 5000 + "deeply nested" + "</div>" * 5000,
        "<script>var a = '<p>' + 1;</script><style>p { color: red }</style>",
    ],
)
def test_empty_or_garbage_html_gives_empty_text_without_raising(html: str) -> None:
    result = extract_main_text(html)

    assert isinstance(result, Extraction)
    assert isinstance(result.text, str)
    if not result.text:
        assert result.method == "none"
    else:
        assert result.method in METHODS


@pytest.mark.parametrize("html", ["", "   ", "<html></html>", "<p></p><p> </p>"])
def test_blank_pages_give_method_none(html: str) -> None:
    assert extract_main_text(html) == Extraction(text="", method="none")


def test_non_string_input_gives_none() -> None:
    assert extract_main_text(None).method == "none"  # type: ignore[arg-type]
    assert extract_main_text(b"<p>bytes</p>").method == "none"  # type: ignore[arg-type]


def test_a_failing_parser_gives_none_instead_of_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(extract_module.lxml.etree, "fromstring", broken)
    monkeypatch.setattr(extract_module.trafilatura, "bare_extraction", broken)

    result = extract_main_text(news_page())

    assert result.text == ""
    assert result.method == "none"


def test_works_without_readability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "_ReadabilityDocument", None)

    result = extract_main_text(split_story_page())  # a page the container pass leaves to the full passes

    assert result.method == "trafilatura"
    assert all(paragraph in result.text for paragraph in BODY[:3])


# --- choosing between the passes -----------------------------------------------------------------


def test_wider_text_is_preferred_when_it_contains_the_primary_and_adds_much() -> None:
    # The primary pass stopped after the first half of a story split into two containers.
    assert extract_module._prefer_located(BODY[:2], BODY)


def test_primary_text_is_kept_when_the_wider_one_adds_only_repeated_captions() -> None:
    caption = "The night ferry leaves the old port at 10pm. Photo: Harbour Gazette"
    located = [caption, caption, caption, *BODY]
    assert not extract_module._prefer_located(BODY, located)


def test_primary_text_is_kept_when_both_passes_agree() -> None:
    assert not extract_module._prefer_located(BODY, BODY[:-1])


def test_a_tiny_side_block_loses_to_a_long_article() -> None:
    notice = ["This copy is for your personal, non-commercial use only. Order reprints from our licensing desk."]
    long_story = BODY * 3  # well over 100 words
    assert extract_module._prefer_located(notice, long_story)
    assert not extract_module._prefer_located(notice, BODY[:1])  # not when the other text is tiny too


def split_story_page() -> str:
    first, second = BODY[:3], BODY[3:]
    return f"""<html><head><title>{HEADLINE}</title></head><body>
      <article>
        <div class="article-body">{"".join(f"<p>{p}</p>" for p in first)}</div>
        <div class="ad-slot"><a href="/ads">Advertisement</a></div>
        <div class="article-body">{"".join(f"<p>{p}</p>" for p in second)}</div>
      </article></body></html>"""


def test_split_story_is_read_whole_with_readability() -> None:
    pytest.importorskip("readability")

    result = extract_main_text(split_story_page())

    assert all(paragraph in result.text for paragraph in BODY)
    assert "Advertisement" not in result.text
    assert result.method == "readability+trafilatura"


def test_leading_headline_paragraph_is_dropped_but_never_the_only_paragraph() -> None:
    drop = extract_module._drop_leading_title
    assert drop([HEADLINE, *BODY[:2]], HEADLINE) == BODY[:2]
    assert drop([HEADLINE.upper() + ".", *BODY[:2]], HEADLINE) == BODY[:2]
    assert drop([HEADLINE], HEADLINE) == [HEADLINE]
    longer = f"{HEADLINE}, the board said after a long debate that ran past midnight on Thursday and Friday"
    assert drop([longer, BODY[0]], HEADLINE) == [longer, BODY[0]]  # a sentence that starts like the headline stays
    assert drop(BODY[:2], None) == BODY[:2]


def test_lines_without_words_are_dropped() -> None:
    assert extract_module._paragraphs("| a | b |\n|---|---|\n- \n  Text  here \n\n") == ["| a | b |", "Text here"]


# --- the container pass --------------------------------------------------------------------------


def test_a_plain_article_page_is_read_by_the_container_pass() -> None:
    result = extract_main_text(news_page())

    assert result.method == "container"
    assert result.text.split("\n\n") == BODY


def test_headings_list_items_and_line_breaks_inside_the_story_are_read() -> None:
    story = f"""<html><body><article>
      <p>{BODY[0]}</p><h2>What changes for passengers</h2><p>{BODY[1]}<br>{BODY[2]}</p>
      <ul><li>Boats every 40 minutes</li><li>Reduced timetable on Sundays</li></ul>
      <blockquote>{BODY[3]}</blockquote><p>{BODY[4]}</p>
    </article></body></html>"""

    result = extract_main_text(story)

    assert result.method == "container"
    assert result.text.split("\n\n") == [
        BODY[0],
        "What changes for passengers",
        BODY[1],
        BODY[2],
        "Boats every 40 minutes",
        "Reduced timetable on Sundays",
        BODY[3],
        BODY[4],
    ]


def test_captions_share_bars_and_scripts_inside_the_story_are_left_out() -> None:
    caption = "The night ferry at the old port on Thursday evening. Photo: Harbour Gazette"
    story = f"""<html><body><article>
      <figure><img src="ferry.jpg"><figcaption>{caption}</figcaption></figure>
      <div class="image-caption">{caption}</div>
      {"".join(f"<p>{p}</p>" for p in BODY)}
      <div class="share-tools"><p>Share this story with your friends and family on social media</p></div>
      <script>var tracking = "Share this story";</script>
    </article></body></html>"""

    result = extract_main_text(story)

    assert result.method == "container"
    assert result.text.split("\n\n") == BODY


def test_paragraphs_outside_the_container_send_the_page_to_the_full_passes() -> None:
    teasers = "".join(f"<div class='card'><p>{p}</p></div>" for p in BODY[3:])
    page = f"<html><body><article>{''.join(f'<p>{p}</p>' for p in BODY[:3])}</article>{teasers}</body></html>"

    assert extract_module._container_paragraphs(extract_module._parse(page)) is None


def test_text_the_pass_does_not_read_sends_the_page_to_the_full_passes() -> None:
    rows = "".join(f"<tr><td>Crossing {n}</td><td>{BODY[n]}</td></tr>" for n in range(3))
    page = (
        f"<html><body><article>{''.join(f'<p>{p}</p>' for p in BODY[3:])}<table>{rows}</table></article></body></html>"
    )

    assert extract_module._container_paragraphs(extract_module._parse(page)) is None


def test_a_short_page_is_left_to_the_full_passes() -> None:
    page = f"<html><body><article><p>{BODY[0]}</p></article></body></html>"

    assert extract_module._container_paragraphs(extract_module._parse(page)) is None
    assert BODY[0] in extract_main_text(page).text


# --- metadata without meta tags ------------------------------------------------------------------


def test_metadata_from_json_ld_when_the_page_has_no_meta_tags() -> None:
    linked = (
        '{"@context": "https://schema.org", "@graph": [{"@type": "WebSite", "name": "The Harbour Gazette"}, '
        f'{{"@type": "NewsArticle", "headline": "{HEADLINE}", "datePublished": "2024-03-07T09:15:00Z", '
        '"author": [{"@type": "Person", "name": "Maria Jensen"}, {"@type": "Person", "name": "Tom Berg"}]}]}'
    )
    page = f"""<html><head><title>Harbour | The Harbour Gazette</title>
      <script type="application/ld+json">{linked}</script></head>
      <body><article>{"".join(f"<p>{p}</p>" for p in BODY)}</article></body></html>"""

    result = extract_main_text(page)

    assert result.title == HEADLINE
    assert result.published == "2024-03-07T09:15:00+00:00"
    assert result.author == "Maria Jensen, Tom Berg"


def test_metadata_from_headline_time_and_byline_as_a_last_resort() -> None:
    page = f"""<html><head><title>{HEADLINE} - The Harbour Gazette</title></head><body><article>
      <div class="story-byline">By Maria Jensen, Harbour correspondent</div>
      <time datetime="2024-03-07T09:15:00+01:00">7 March</time>
      {"".join(f"<p>{p}</p>" for p in BODY)}</article></body></html>"""

    result = extract_main_text(page)

    assert result.title == HEADLINE
    assert result.published == "2024-03-07T08:15:00+00:00"
    assert result.author == "Maria Jensen"
