"""passages.coverage: how much of a question one passage speaks to, weighed by rarity."""

from answer_engine.passages import Passage, coverage
from answer_engine.text import terms


def passage(text):
    return Passage(page=0, order=0, text=text)


def test_the_rare_terms_of_a_question_weigh_most():
    question = terms("Who invented the first nuclear reactor?")
    assert question == ["who", "invent", "first", "nuclear", "reactor"]
    idf = {"who": 0.3, "invent": 2.0, "first": 0.5, "nuclear": 3.0, "reactor": 6.0}
    common = passage("The first steam engine was invented long before nuclear power.")
    right = passage("Enrico Fermi's team invented the first nuclear reactor, Chicago Pile-1.")
    assert coverage(question, [common], idf) == round(5.5 / 11.8, 4)  # all but the rarest
    assert coverage(question, [common], None) == 0.6  # equal weights: it looks nearly covered
    assert coverage(question, [common, right], idf) == round(11.5 / 11.8, 4)  # the best passage counts
    assert coverage(question, [], idf) == 0.0
    assert coverage([], [right], idf) is None  # a question with no terms cannot be judged
