"""The embedded configuration `meterline up` runs when there is no meterline.yaml.

It needs no provider key: the `demo` model group is a `mock_response` deployment, answered in
process by the gateway's demo provider (gateway/providers/demo.py) on every endpoint, with usage
counted by the gateway's tokenizer, and priced at gpt-4o-mini's real rates from LiteLLM's bundled
price table. The two demo
keys are public on purpose (the gateway binds to 127.0.0.1 and serves only the mock).

The support team has a small daily budget whose alarms go to the `console` channel (a log line
on `meterline up`'s terminal, no network), so a first run shows a budget and its alarms:
`--demo-traffic` sends one request every 0.5-2 s (0.8/s), half from support-bot; one costs about
US$0.00002 (some 45 input and 25 output tokens at gpt-4o-mini's US$0.15 and US$0.60 a million),
so the team spends about US$0.0005 a minute: the run-rate forecast warns at one of the first
mart runs (the earlier in the day, the sooner), 50 % of US$0.002 is crossed after about
2 minutes, 100 % after about 4.
"""

DEMO_BUDGET_USD = 0.002

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
budgets:
  - name: demo-support-daily
    scope: {{team: support}}
    period: day
    amount_usd: {DEMO_BUDGET_USD}
    channels: [console]
alerts:
  channels:
    console: {{type: console}}
"""
