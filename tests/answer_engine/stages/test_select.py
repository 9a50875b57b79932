"""select's merge of several searches' rankings (a pro answer): each search's best passages take turns."""

from answer_engine.passages import Passage
from answer_engine.stages.select import take_turns


def p(page, order, words=10):
    return Passage(page=page, order=order, text=" ".join(["word"] * words))


def test_each_search_gets_its_best_passage_in_before_any_gets_a_second():
    first = [p(0, 0), p(0, 1), p(1, 0)]
    second = [p(2, 0), p(2, 1)]
    chosen = take_turns([first, second], max_passages=3, token_budget=1000)
    assert [(x.page, x.order) for x in chosen] == [(0, 0), (2, 0), (0, 1)]


def test_a_passage_both_searches_found_counts_once():
    shared = p(1, 3)
    chosen = take_turns([[shared, p(0, 0)], [p(1, 3), p(2, 0)]], max_passages=5, token_budget=1000)
    assert [(x.page, x.order) for x in chosen] == [(1, 3), (0, 0), (2, 0)]


def test_the_token_budget_passes_over_what_does_not_fit():
    big, small = p(2, 0, words=300), p(2, 1, words=5)
    chosen = take_turns([[p(0, 0, words=50)], [big, small]], max_passages=5, token_budget=120)
    assert [(x.page, x.order) for x in chosen] == [(0, 0), (2, 1)]
