"""Model groups, deployments and the one routing layer (strategy, retries, fallbacks, cooldowns)
that drives both upstream paths: the direct OpenAI-protocol forward and LiteLLM's translation."""
