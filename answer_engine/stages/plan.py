"""plan: what to search for. Today one search per question; a follow-up borrows the thread's
previous question (the multi-step planner of the multi-step search issue replaces this)."""

from __future__ import annotations

from answer_engine.request import AskRequest

FOLLOW_UP_WORDS = 8  # a question shorter than this in a thread is read as a follow-up


def search_query(request: AskRequest) -> str:
    """A follow-up like "and when did he die?" searches with the previous question for context."""
    previous = [m.content for m in request.history if m.role == "user"]
    if previous and len(request.query.split()) < FOLLOW_UP_WORDS:
        return f"{previous[-1]} {request.query}"
    return request.query
