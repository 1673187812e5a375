"""Span and log attribute names: OpenTelemetry GenAI semantic conventions plus Meterline's own.

Plain string constants with no SDK import, so every stage can use them cheaply.
"""

# OpenTelemetry GenAI semantic conventions
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"

# HTTP / error conventions
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
HTTP_ROUTE = "http.route"
ERROR_TYPE = "error.type"
SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
SERVICE_INSTANCE_ID = "service.instance.id"

# Meterline
METERLINE_AGENT_ID = "meterline.agent.id"
METERLINE_TEAM = "meterline.team"
METERLINE_PROJECT = "meterline.project"
METERLINE_COST_USD = "meterline.cost.usd"
METERLINE_REQUEST_ID = "meterline.request.id"
METERLINE_STREAM = "meterline.stream"
METERLINE_TTFT_MS = "meterline.ttft_ms"
METERLINE_USAGE_SCHEMA_VERSION = "meterline.usage.schema_version"
METERLINE_DEPLOYMENT_ID = "meterline.deployment.id"
METERLINE_PATH = "meterline.upstream.path"
"""direct (OpenAI protocol forwarded) or litellm (translated)."""

# Operation names (gen_ai.operation.name values)
OPERATION_CHAT = "chat"
OPERATION_TEXT_COMPLETION = "text_completion"
OPERATION_EMBEDDINGS = "embeddings"

GATEWAY_SERVICE_NAME = "meterline-gateway"
