"""The embedded configuration `meterline up` runs when there is no meterline.yaml.

It needs no provider key: the `demo` model group is served by LiteLLM's `mock_response`
and priced at gpt-4o-mini's real rates from LiteLLM's bundled price table. The two demo
keys are public on purpose (the gateway binds to 127.0.0.1 and serves only the mock).
"""

DEMO_KEYS = {
    "support-bot": "demo-key-support-bot",
    "research-agent": "demo-key-research-agent",
}

DEFAULT_CONFIG_YAML = f"""
model_list:
  - model_name: demo
    litellm_params:
      model: openai/gpt-4o-mini
      mock_response: >-
        Meterline is answering from the demo model. Every request you send is metered,
        priced and attributed to your agent.
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 0
  timeout: 30
timezone: UTC
agents:
  - id: support-bot
    team: support
    project: helpdesk
    tags: {{cost_center: cc-102}}
    key: {DEMO_KEYS["support-bot"]}
  - id: research-agent
    team: research
    project: insights
    tags: {{cost_center: cc-205}}
    key: {DEMO_KEYS["research-agent"]}
telemetry:
  collector: http://127.0.0.1:4318
storage:
  data_dir: ./data
"""
