"""Property tests (hypothesis) for the parts that read untrusted text: the citation parser and the chunker."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from answer_engine.citations import CitationStream, SourceText
from answer_engine.passages import chunk_text

pytestmark = pytest.mark.security

SOURCES = [
    SourceText(1, "Warsaw is the capital of Poland."),
    SourceText(2, "Oxygen is a chemical element with symbol O."),
]
# Text made of words, spaces, punctuation, newlines and marker-like fragments, in any order.
pieces = st.sampled_from(
    [
        "Warsaw",
        " capital",
        " of",
        " Poland",
        ".",
        " ",
        "\n",
        "[",
        "]",
        "1",
        "2",
        "9",
        "0",
        ",",
        "[1]",
        "[2]",
        "[9]",
        "[0]",
        "[1, 2]",
        "[citation:2]",
        "[Source 1]",
        "3.5",
        "?",
        "!",
        '"',
        "<b>",
        "Oxygen",
        " element",
        "[note]",
        "[[1]]",
        "é",
        "中",
    ]
)
answers = st.lists(pieces, max_size=60).map("".join)


@given(text=answers, cut=st.integers(min_value=1, max_value=7))
@settings(max_examples=300, deadline=None)
def test_streamed_text_equals_final_and_every_marker_names_a_source(text, cut):
    cs = CitationStream(SOURCES)
    shown = "".join(cs.feed(text[i : i + cut]) for i in range(0, len(text), cut)) + cs.finish()
    assert shown == cs.text  # what the user saw is the final answer, whatever the token boundaries
    assert set(cs.cited) <= {1, 2}
    # no citation-looking marker for a source that does not exist survives ("[9]", "[0]")
    assert not re.search(r"\[(?![12]\])\d+\]", cs.text), cs.text
    # every source the text cites is in the citations event
    assert {int(n) for n in re.findall(r"\[([12])\]", cs.text)} <= set(cs.cited)


@given(text=answers)
@settings(max_examples=200, deadline=None)
def test_same_text_same_answer_whatever_the_token_boundaries(text):
    def run(step):
        cs = CitationStream(SOURCES)
        for i in range(0, len(text), step):
            cs.feed(text[i : i + step])
        cs.finish()
        return cs.text, cs.cited

    assert run(1) == run(5) == run(len(text) or 1)


words = st.lists(
    st.sampled_from(["alpha", "beta", "gamma.", "delta!", "eps?", "zeta", "\n", "x", "Mr.", "3.14"]),
    max_size=400,
).map(" ".join)


@given(text=words, size=st.integers(min_value=20, max_value=200))
@settings(max_examples=200, deadline=None)
def test_chunker_loses_no_words_of_kept_paragraphs_and_bounds_sizes(text, size):
    chunks = chunk_text(text, size)
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
    kept = [p for p in paragraphs if len(p.split()) >= 8] or paragraphs  # a short document is kept whole
    assert " ".join(chunks).split() == " ".join(kept).split()  # nothing lost, nothing invented, in order
    for c in chunks:
        assert c.strip() == c and c
