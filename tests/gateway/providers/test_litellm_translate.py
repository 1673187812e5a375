"""gateway/providers/litellm_translate.py: how a LiteLLM exception becomes an UpstreamFailure."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from gateway.providers.litellm_translate import _failure
from gateway.routing.deployments import Deployment


class APIConnectionError(Exception):  # LiteLLM's name is what _failure classifies by
    pass


def test_litellm_traceback_in_a_message_never_reaches_the_client() -> None:
    # Found by the schemathesis run (tests/gateway/test_openapi.py): LiteLLM wraps an unexpected
    # KeyError in APIConnectionError with the traceback appended to the message.
    exc = APIConnectionError(
        "litellm.APIConnectionError: 'content'\nTraceback (most recent call last):\n  File \"main.py\", line 1"
    )
    failure = _failure(exc, cast(Deployment, SimpleNamespace(api_key=None)))
    error = failure.to_client_error()
    assert "Traceback" not in error.message
    assert error.message.endswith("litellm.APIConnectionError: 'content'")
