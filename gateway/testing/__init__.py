"""Test doubles that ship with the gateway: local OpenAI and Anthropic providers.

behaviour = MockBehaviour(accepted_keys={"sk-test"})
app = create_mock_openai(behaviour)       # or create_mock_anthropic(behaviour)
behaviour.fail_next(ScriptedFailure(429, retry_after="2"))
"""

from gateway.testing.behaviour import MockBehaviour, RecordedRequest, ScriptedFailure, prompt_tokens, words
from gateway.testing.mock_anthropic import create_mock_anthropic
from gateway.testing.mock_openai import create_mock_openai
from gateway.testing.openai_bodies import embedding_vector

__all__ = [
    "MockBehaviour",
    "RecordedRequest",
    "ScriptedFailure",
    "create_mock_anthropic",
    "create_mock_openai",
    "embedding_vector",
    "prompt_tokens",
    "words",
]
