"""Synthetic agents for `meterline up --demo-traffic`: real requests with the official openai SDK."""

from __future__ import annotations

import random
import threading

import openai

_PROMPTS = [
    "Summarise yesterday's support tickets about billing.",
    "Draft a polite reply to a customer asking for a refund.",
    "List three risks in the attached quarterly plan.",
    "Translate 'the invoice is overdue' into French and German.",
    "Classify this ticket: 'my dashboard shows no data since Monday'.",
]


def drive(gateway_url: str, keys: dict[str, str], stop: threading.Event, model: str = "demo") -> None:
    """Send a request from a random demo agent every 0.5-2 s, half of them streamed, until `stop`."""
    clients = {
        agent: openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0) for agent, key in keys.items()
    }
    rng = random.Random()
    while clients and not stop.wait(rng.uniform(0.5, 2.0)):
        agent = rng.choice(list(clients))
        messages = [{"role": "user", "content": rng.choice(_PROMPTS) * rng.randint(1, 6)}]
        try:
            if rng.random() < 0.5:
                clients[agent].chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
            else:
                stream = clients[agent].chat.completions.create(model=model, messages=messages, stream=True)  # type: ignore[arg-type]
                for _chunk in stream:
                    pass
        except openai.OpenAIError as exc:
            print(f"demo traffic: {agent}: {type(exc).__name__}: {exc}")
