"""The pipeline's stages, one module each, in the order a question meets them:

plan -> search -> read (fetch + extract) -> select -> generate -> cite

Each stage takes what it needs and the request's :class:`~answer_engine.stages.state.RunState`
(timings, trace, the results and sources so far); a stage that cannot go on raises
:class:`~answer_engine.stages.state.StageError`, which the pipeline turns into an ``error`` event.
"""

from answer_engine.stages.state import RunState, StageError

__all__ = ["RunState", "StageError"]
