#!/usr/bin/env bash
# The gateway with curl. BASE defaults to the local gateway; MODEL to the CPU demo model.
# Every request to a model route carries the HAI-DEF acknowledgement header.
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8000}
MODEL=${MODEL:-demo-tiny-gemma3-random}
ACK="HAI-DEF-Acknowledged: 2024-11-15"

# The terms: no key or acknowledgement needed.
curl -sS "$BASE/v1/terms"; echo

# Health of the gateway and the engine.
curl -sS "$BASE/health"; echo

# The models served.
curl -sS "$BASE/v1/models" -H "$ACK"; echo

# A chat completion: the answer carries a top-level "disclaimer" field and the X-Disclaimer header.
curl -sS "$BASE/v1/chat/completions" -H "$ACK" -H "Content-Type: application/json" \
  -d "{\"model\": \"$MODEL\", \"max_tokens\": 32,
       \"messages\": [{\"role\": \"user\", \"content\": \"What is a pneumothorax?\"}]}"; echo

# A stream: server-sent events, the disclaimer in the last chunk before [DONE].
curl -sS -N "$BASE/v1/chat/completions" -H "$ACK" -H "Content-Type: application/json" \
  -d "{\"model\": \"$MODEL\", \"max_tokens\": 16, \"stream\": true,
       \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}"; echo

# Without the acknowledgement: 403 with the terms address and how to acknowledge.
curl -sS "$BASE/v1/chat/completions" -H "Content-Type: application/json" \
  -d "{\"model\": \"$MODEL\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}"; echo

# The gateway's Prometheus metrics, and the engine's through the gateway.
# (grep reads all of curl's output: with pipefail, grep -m would make curl fail on a closed pipe)
curl -sS "$BASE/metrics" | grep "^medgemma_gateway_time_to_first_token_seconds_count"
curl -sS "$BASE/metrics/engine" | grep "^vllm:num_requests_running"
