"""The one tokenizer (index, passage ranking, citation support) and the text helpers."""

import pytest

from answer_engine.text import approx_tokens, fold, pack_words, split_sentences, terms, truncate_words


def test_terms_are_lowercased_stemmed_and_without_stop_words():
    assert terms("The Runners were RUNNING to the races") == ["runner", "were", "run", "race"]
    assert terms("the of and a") == []
    assert terms("x") == []  # single characters are not terms


def test_sentences_split_at_terminators_and_line_breaks():
    text = 'He said "stop." Then he left! Did he? Yes\nNew line'
    assert split_sentences(text) == ['He said "stop."', "Then he left!", "Did he?", "Yes", "New line"]
    assert split_sentences("3.14 is pi") == ["3.14 is pi"]  # no space after the dot: not a sentence end


def test_a_full_stop_after_an_abbreviation_or_initial_does_not_end_the_sentence():
    text = "Case law: Wisconsin v. Yoder, 406 U.S. 205 (1972). J. K. Rowling wrote it. Dr. Who\nSt. Paul"
    assert split_sentences(text) == [
        "Case law: Wisconsin v. Yoder, 406 U.S. 205 (1972).",
        "J. K. Rowling wrote it.",
        "Dr. Who",
        "St. Paul",
    ]
    assert split_sentences("It ended in 1972. Then came more.") == ["It ended in 1972.", "Then came more."]
    assert split_sentences("Ask Albert C.") == ["Ask Albert C."]
    # the index's chunking keeps the plain split its retrieval was measured with
    assert split_sentences("Albert C. Smith won.", abbreviations=False) == ["Albert C.", "Smith won."]


def test_pack_words_bounds_chunks_but_keeps_a_long_piece_whole():
    pieces = ["a b c", "d e", "f g h i", "j"]
    assert pack_words(pieces, 5) == ["a b c d e", "f g h i j"]
    assert pack_words(["one two three four five six"], 3) == ["one two three four five six"]
    assert pack_words([], 3) == []


def test_truncate_at_a_word_boundary_with_an_ellipsis():
    assert truncate_words("short   text", 50) == "short text"
    assert truncate_words("alpha beta, gamma delta", 12) == "alpha beta…"


def test_token_estimate_grows_with_words():
    assert approx_tokens("") == 1
    assert approx_tokens("word " * 30) == 41


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("Gospic", "Gospić"),
        ("Temujin", "Temüjin"),
        ("Krakow", "Kraków"),
        ("Lodz", "Łódź"),
        ("Oresund", "Øresund"),
        ("Strasse", "Straße"),
        ("Gospic", "Gospic\u0301"),  # decomposed: c + combining acute
    ],
)
def test_a_name_typed_without_its_accents_is_the_same_term(typed, written):
    assert terms(typed) == terms(written) != []


def test_folding_leaves_other_scripts_and_ascii_alone():
    assert fold("Москва й") == "Москва й" and fold("हिन्दी") == "हिन्दी"
    assert fold("Œuvre, Æsir, Ðorđe") == "Oeuvre, Aesir, Dorde"
    text = "plain ascii"
    assert fold(text) is text
