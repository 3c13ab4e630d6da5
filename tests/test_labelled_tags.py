"""Tagging quality on the labelled set: the targets every default tag must keep, and the traps.

The same evaluation as tests/benchmarks/bench_tagging.py (run that with --errors to see what
a failure here is made of); the labelling rules are in its docstring.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from typing import Any

import pytest
import yaml

from shared.pipeline.clean import BoilerplateRules
from shared.pipeline.tag import Taxonomy
from tests.benchmarks.bench_tagging import DEFAULT_TAGS, ENTITY_KINDS, Evaluation, evaluate, load_labelled, tag_text

MIN_PRECISION = 0.95
MIN_RECALL = 0.9


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load()


@pytest.fixture(scope="module")
def rules() -> BoilerplateRules:
    return BoilerplateRules.load()


@pytest.fixture(scope="module")
def labelled() -> list[dict[str, Any]]:
    return load_labelled()


@pytest.fixture(scope="module")
def evaluation(labelled: list[dict[str, Any]], taxonomy: Taxonomy, rules: BoilerplateRules) -> Evaluation:
    return evaluate(labelled, taxonomy, rules)


# --- the set itself -------------------------------------------------------------------------------


def test_the_labelled_set_is_large_and_balanced_enough_to_measure(labelled: list[dict[str, Any]]) -> None:
    assert len(labelled) >= 90
    assert len({example["id"] for example in labelled}) == len(labelled)
    per_tag = Counter(tag for example in labelled for tag in example["tags"])
    assert set(per_tag) <= set(DEFAULT_TAGS)
    assert all(per_tag[tag] >= 12 for tag in DEFAULT_TAGS), per_tag
    assert sum(1 for example in labelled if not example["tags"]) >= 30
    assert all(60 <= len(example["text"].split()) <= 150 for example in labelled)


def test_entity_labels_are_canonical_names_from_the_shipped_lists(labelled: list[dict[str, Any]]) -> None:
    data = resources.files("shared.pipeline").joinpath("data")
    for kind in ENTITY_KINDS:
        known = set(yaml.safe_load(data.joinpath(f"{kind}.yml").read_text("utf-8"))[kind])
        unknown = {value for example in labelled for value in example[kind]} - known
        assert not unknown, f"{kind} labels not in {kind}.yml: {sorted(unknown)}"


# --- the targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DEFAULT_TAGS)
def test_each_default_tag_keeps_its_precision_and_recall_targets(evaluation: Evaluation, name: str) -> None:
    score = evaluation.tags[name]
    errors = [
        f"{error.article_id}: missing {error.missing} extra {error.extra}"
        for error in evaluation.errors
        if error.field == "tags" and name in error.missing + error.extra
    ]
    assert score.precision >= MIN_PRECISION and score.recall >= MIN_RECALL, (
        f"{name}: precision {score.precision:.3f}, recall {score.recall:.3f}\n" + "\n".join(errors)
    )


# --- traps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "text", "absent"),
    [
        ("Bakery test-fires its new oven", "The bakery test-fired its wood oven before reopening.", "missile-test"),
        ("Rebel attack", "The Houthis said they had fired a ballistic missile at the vessel.", "missile-test"),
        ("Satellite in orbit", "The rocket placed a weather satellite into orbit after a test launch.", "missile-test"),
        ("Results leak", "The figures were published ahead of the press embargo.", "sanctions"),
        ("Bank sanctions staff", "The bank sanctioned dozens of employees over messaging apps.", "sanctions"),
        ("Senate rules", "Senators weighed the so-called nuclear option to end the filibuster.", "nuclear"),
        ("Office colours", "Navy blue has overtaken black as the colour of the season.", "military"),
        ("Kitchen", "The chef runs her kitchen with military precision.", "military"),
        ("Game", "Players can forge weapons in the game's crafting system.", "military"),
        ("Everest", "Climbers reached the summit of Everest on Saturday.", "diplomacy"),
        ("Carmakers", "Two carmakers began talks on a merger.", "diplomacy"),
        ("Rail strike", "Drivers will strike after wage talks broke down.", "diplomacy"),
    ],
)
def test_traps_stay_out_of_the_tag(
    taxonomy: Taxonomy, rules: BoilerplateRules, title: str, text: str, absent: str
) -> None:
    assert absent not in tag_text(title, text, taxonomy, rules).tags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Russia said it had test-launched its Sarmat missile.", "missile-test"),
        ("Pakistan conducted a training launch of a ballistic missile.", "missile-test"),
        ("A ballistic missile launched by North Korea exploded.", "missile-test"),  # not hidden by "ballistic missile"
        ("Iran expanded its stock of weapons-grade uranium.", "nuclear"),
        ("EU foreign ministers met in Brussels on Monday.", "diplomacy"),
        ("Ukraine's defence minister led the delegation.", "military"),
    ],
)
def test_variants_and_inflections_are_found(
    taxonomy: Taxonomy, rules: BoilerplateRules, text: str, expected: str
) -> None:
    assert expected in tag_text("Wire report", text, taxonomy, rules).tags


def test_weapons_grade_material_is_nuclear_not_military(taxonomy: Taxonomy, rules: BoilerplateRules) -> None:
    article = tag_text("Iran", "Iran has more weapons-grade uranium than ever.", taxonomy, rules)
    assert article.tags == ["nuclear"]


def test_a_country_inside_an_organization_name_is_still_found(taxonomy: Taxonomy, rules: BoilerplateRules) -> None:
    article = tag_text("Treasury acts", "The US Treasury sanctioned 30 tankers.", taxonomy, rules)
    assert article.countries == ["US"] and article.organizations == ["US Treasury"]


def test_the_city_of_xian_is_china_and_not_xi_jinping(taxonomy: Taxonomy, rules: BoilerplateRules) -> None:
    article = tag_text("Exhibition", "Xi'an's museum will lend its terracotta warriors to Britain.", taxonomy, rules)
    assert article.people == [] and article.countries == ["CN", "GB"]
