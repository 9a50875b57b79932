"""Structured answers: JSON that validates against a caller's JSON Schema.

The schema is checked before anything streams (a malformed schema, or one the backend cannot
constrain its decoding to, is a 400 naming why); the backend decodes under it (llama.cpp: a grammar
made from the schema; an OpenAI-compatible server: its own ``response_format``); and the finished
output is validated against the schema again, by ``jsonschema``, so what the caller gets is
schema-valid JSON or an error, never something in between.
"""

from __future__ import annotations

import json
from typing import Any

MAX_SCHEMA_CHARS = 16_000


class SchemaError(ValueError):
    """The schema is unusable: malformed, too large, or beyond what the backend can honour."""


def check_schema(schema: dict[str, Any]) -> None:
    """A well-formed JSON Schema of a sane size; SchemaError naming the problem otherwise."""
    import jsonschema

    if len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
        raise SchemaError(f"the schema is larger than {MAX_SCHEMA_CHARS} characters")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the schema"
        raise SchemaError(f"not a valid JSON Schema at {where}: {exc.message}") from None


def output_problem(text: str, schema: dict[str, Any]) -> str | None:
    """Why ``text`` is not JSON valid against ``schema``; None when it is."""
    import jsonschema

    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"the output is not JSON ({exc})"
    error = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(value)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.path) or "the output"
        return f"the output does not match the schema at {where}: {error.message}"
    return None
