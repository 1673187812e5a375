"""POST /v1/messages/count_tokens: Anthropic's token counting, which its SDK and Claude Code call.

The body is a Messages request without `max_tokens`; the answer is `{"input_tokens": N}` with
`x-meterline-token-count` saying whose count it is: `provider` when the model group's provider
counted (Anthropic's own count_tokens on the direct path; the demo provider, whose usage is the
gateway's tokenizer count by definition), `estimated` when the gateway counted with its
tokenizer (`request_tokens.py`), including when the provider's count failed.

Authenticated and checked (model group, the agent's models) as /v1/messages is. Not billed and
not in the ledger: providers do not charge for a count, and it uses no quota.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from gateway.anthropic_errors import anthropic_error_response
from gateway.chat_request import parse_json_object
from gateway.endpoint_request import EndpointRequest
from gateway.errors import GatewayError, GatewayNotReady, InvalidRequest, ModelNotAllowed, ModelNotFound
from gateway.json_codec import dumps
from gateway.providers.anthropic_direct import PASSED_HEADERS
from gateway.request_body import read_body
from gateway.request_tokens import messages_input_tokens
from gateway.routing.deployments import pinned_key
from gateway.routing.failures import UpstreamFailure
from gateway.state import GatewayState
from gateway.tokens import off_loop, text_chars

log = logging.getLogger(__name__)

ROUTE = "/v1/messages/count_tokens"
COUNT_HEADER = "x-meterline-token-count"


def parse_count_request(body: bytes, headers: dict[str, str]) -> EndpointRequest:
    data = parse_json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required", param="model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: must be a non-empty array of messages", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{index}.role: must be 'user' or 'assistant'", param=f"messages.{index}")
    return EndpointRequest(model, data, headers=headers)


async def count_tokens(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    try:
        authorization = request.headers.get("authorization")
        if authorization is None and (key := request.headers.get("x-api-key")):
            authorization = f"Bearer {key}"
        identity = state.agents.authenticate(authorization)
        upstream = state.upstream
        if upstream is None:
            raise GatewayNotReady("The gateway is still starting; retry shortly.")
        passed = {name: request.headers[name] for name in PASSED_HEADERS if name in request.headers}
        asked = parse_count_request(await read_body(request, state.max_body_bytes), passed)
        if not upstream.has_group(asked.model):
            raise ModelNotFound(f"The model '{asked.model}' does not exist or you do not have access to it.")
        if identity.models is not None and asked.model not in identity.models:
            raise ModelNotAllowed(f"Agent '{identity.agent_id}' may not use model '{asked.model}'.")
    except GatewayError as error:
        return anthropic_error_response(error)
    deployments = upstream.router.deployments(asked.model)
    source, tokens = "estimated", None
    if anthropic := [d for d in deployments if d.provider == "anthropic" and d.path == "litellm"]:
        # Only Anthropic's own API counts; every other provider's group is counted here.
        try:
            tokens, source = await upstream.anthropic.count_tokens(pinned_key(anthropic[0]), asked), "provider"
        except UpstreamFailure as failure:
            log.info("count_tokens: %s's count failed (%s); the gateway counts", anthropic[0].id, failure)
    elif deployments and all(d.path == "demo" for d in deployments):
        source = "provider"  # the demo reports exactly the tokenizer's count as its usage
    if tokens is None:
        try:
            tokens = await off_loop(lambda: messages_input_tokens(asked.body), text_chars(asked.body))
        except TypeError:  # a content part whose `text` is not a string
            refused = InvalidRequest("messages: a text content block's text must be a string", param="messages")
            return anthropic_error_response(refused)
    headers = {COUNT_HEADER: source}
    return Response(dumps({"input_tokens": tokens}), media_type="application/json", headers=headers)
