"""cite: the model's [n] markers checked against the numbered sources while the answer streams
(the rules live in citations.py). The verify stage then checks each sentence and builds the
citations event from the final text."""

from __future__ import annotations

from answer_engine.citations import CitationStream, SourceText
from answer_engine.events import DeltaEvent
from answer_engine.passages import SourceDoc


class Citer:
    def __init__(self, sources: list[SourceDoc], *, threshold: float) -> None:
        self.stream = CitationStream([SourceText(s.n, s.text) for s in sources], threshold=threshold)

    def feed(self, piece: str) -> DeltaEvent | None:
        """The text the reader may see now (markers and sentence ends may be held back a little)."""
        shown = self.stream.feed(piece)
        return DeltaEvent(text=shown) if shown else None

    def finish(self) -> DeltaEvent | None:
        tail = self.stream.finish()
        return DeltaEvent(text=tail) if tail else None

    @property
    def text(self) -> str:
        return self.stream.text
