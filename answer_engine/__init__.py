"""answer_engine: search, read, and answer with citations that point at sources it really read."""

__version__ = "0.1.0"
