"""gateway/providers/litellm_success_log.py: LiteLLM's own success log is skipped for the
gateway's calls, and only for them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.providers.litellm_success_log import _flag, no_success_log
from gateway.providers.litellm_translate import _import_litellm


class _Recorder:
    """A LiteLLM callback counting success events; `seen` is set by the first one."""

    def __init__(self, logger_base: type) -> None:
        recorder = self

        class Logger(logger_base):  # type: ignore[misc]
            async def async_log_success_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                recorder.texts.append(response_obj.choices[0].message.content)
                recorder.seen.set()

        self.texts: list[str] = []
        self.seen = asyncio.Event()
        self.logger = Logger()


def test_the_flag_is_set_only_inside() -> None:
    _import_litellm()
    flag = _flag()
    assert flag is not None
    assert flag.get() is False
    with no_success_log():
        assert flag.get() is True
        with no_success_log():
            assert flag.get() is True
        assert flag.get() is True
    assert flag.get() is False


def test_a_call_inside_is_not_logged_and_one_outside_is() -> None:
    litellm = _import_litellm()
    from litellm.integrations.custom_logger import CustomLogger

    async def scenario() -> tuple[list[str], str, str]:
        recorder = _Recorder(CustomLogger)
        litellm.callbacks.append(recorder.logger)
        try:
            messages = [{"role": "user", "content": "hi"}]
            with no_success_log():
                inside = await litellm.acompletion(
                    model="anthropic/claude-haiku-4-5", messages=messages, mock_response="one", num_retries=0
                )
            outside = await litellm.acompletion(
                model="anthropic/claude-haiku-4-5", messages=messages, mock_response="two", num_retries=0
            )
            # LiteLLM's logging worker runs success logs in the order calls finish: had the first
            # call been logged, it would be recorded before the second.
            await asyncio.wait_for(recorder.seen.wait(), 30)
            return recorder.texts, inside.choices[0].message.content, outside.choices[0].message.content
        finally:
            litellm.callbacks.remove(recorder.logger)

    logged, inside_text, outside_text = asyncio.run(scenario())
    assert (inside_text, outside_text) == ("one", "two")
    assert logged == ["two"]


def test_the_flag_is_reset_when_the_call_fails() -> None:
    _import_litellm()
    flag = _flag()
    assert flag is not None
    with pytest.raises(RuntimeError), no_success_log():
        assert flag.get() is True
        raise RuntimeError("upstream failed")
    assert flag.get() is False
