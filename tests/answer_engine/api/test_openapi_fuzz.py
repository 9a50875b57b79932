"""schemathesis against our own OpenAPI document: no 5xx, and every response matches the schema.

Driven through schemathesis's Python API with hypothesis (its pytest plugin does not support the
pytest version we run)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline

pytestmark = pytest.mark.security

EXAMPLES_PER_OPERATION = 30


@pytest.fixture
def app(settings, fake_backend_cls):
    settings.generation.timeout_s = 5
    return create_app(
        settings, pipeline=build_pipeline(settings, backend=fake_backend_cls(["The Nobel Prize [1]."]))
    )


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_api_conforms_to_its_openapi_document(app):
    ops = operations(app)
    assert {op.path for op in ops} >= {"/health", "/api/ask", "/v1/chat/completions", "/v1/models"}
    for op in ops:

        @given(case=op.as_strategy())
        @hsettings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case):
            # Every check but "a schema-valid request is accepted": a schema cannot say that the
            # last message must be the user's, so some schema-valid bodies rightly get a 400.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()


def test_openapi_document_names_the_perplexity_fields(app):
    body = app.openapi()["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    for field in (
        "search_domain_filter",
        "search_recency_filter",
        "search_after_date_filter",
        "search_before_date_filter",
        "return_related_questions",
        "disable_search",
        "web_search_options",
    ):
        assert field in body
