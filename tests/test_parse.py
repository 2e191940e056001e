"""The strict answer parser: wrapping is removed, nothing is guessed."""

from __future__ import annotations

import pytest

from thrifty_frames._stages.parse import parse_answer

SENTIMENT = ("positive", "negative")
AG = ("World", "Sports", "Business", "Sci/Tech")
YESNO = ("yes", "no")


@pytest.mark.parametrize(
    ("answer", "choices", "expected"),
    [
        ("positive", SENTIMENT, "positive"),
        ("  Positive \n", SENTIMENT, "positive"),
        ("NEGATIVE", SENTIMENT, "negative"),
        ("positive.", SENTIMENT, "positive"),
        ('"negative"', SENTIMENT, "negative"),
        ("**positive**", SENTIMENT, "positive"),
        ('{"label": "negative"}', SENTIMENT, "negative"),
        ('{"Label": "Negative"}', SENTIMENT, "negative"),
        ('{"answer": "positive"}', SENTIMENT, "positive"),
        ('["positive"]', SENTIMENT, "positive"),
        ('```json\n{"label": "Sci/Tech"}\n```', AG, "Sci/Tech"),
        ("```\nSports\n```", AG, "Sports"),
        ("sci/tech", AG, "Sci/Tech"),
        ("The answer is: POSITIVE.", SENTIMENT, "positive"),
        ("Label: World", AG, "World"),
        ("Sure! Here is the label you asked for.\n\nBusiness", AG, "Business"),
        ('Here is my answer: {"label": "World"}', AG, "World"),
        ("Yes.", YESNO, "yes"),
        ("true", YESNO, "yes"),
        ("False", YESNO, "no"),
        ('{"label": true}', YESNO, "yes"),
        ("N", YESNO, "no"),
        ("Business, Finance", ("Business, Finance", "Other"), "Business, Finance"),
        (
            '{"label": "Business, Finance"}',
            ("Business, Finance", "Other"),
            "Business, Finance",
        ),
        ("DESC:manner", ("DESC:manner", "HUM:ind"), "DESC:manner"),
        ("Other.", ("Other.", "Spam"), "Other."),
    ],
)
def test_wrapped_answers_map_to_their_label(answer, choices, expected):
    assert parse_answer(answer, choices) == expected


@pytest.mark.parametrize(
    ("answer", "choices"),
    [
        ("neutral", SENTIMENT),  # outside the set
        ("not positive", SENTIMENT),  # mentions a label but is not it
        ("It is positive, though a bit negative too", SENTIMENT),
        ("positive or negative", SENTIMENT),
        ('{"label": "mixed"}', SENTIMENT),
        ('{"label": "positive", "other": 1, "x": 2}', ("World", "Sports")),
        (
            "Business",
            ("Business, Finance", "Other"),
        ),  # part of a label is not the label
        ("Finance", ("Business, Finance", "Other")),
        ("Sci", AG),
        ("maybe", YESNO),
        ("", SENTIMENT),
        ("```\n```", SENTIMENT),
        (None, SENTIMENT),
    ],
)
def test_answers_outside_the_labels_are_not_guessed(answer, choices):
    assert parse_answer(answer, choices) is None


def test_true_false_only_map_for_a_yes_no_question():
    assert parse_answer("true", ("positive", "negative")) is None
