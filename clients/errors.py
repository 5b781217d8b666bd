"""Each error the gateway returns, as the OpenAI SDK raises it, and what to do about it."""

import openai

from clients._common import MODEL, client

ADVICE = {
    openai.BadRequestError: "fix the request: the message says which field (400)",
    openai.AuthenticationError: "send a valid API key as the bearer token (401)",
    openai.PermissionDeniedError: "acknowledge the HAI-DEF terms: header or POST /v1/terms/acknowledge (403)",
    openai.NotFoundError: "use a model the gateway serves: GET /v1/models (404)",
    openai.RateLimitError: "too many concurrent requests: back off for Retry-After seconds (429)",
    openai.InternalServerError: "the engine is down, restarting or slow: retry later (502/503/504)",
    openai.APIConnectionError: "the gateway is not reachable: is `make serve` running?",
}


def explain(exc: openai.OpenAIError) -> str:
    for kind, advice in ADVICE.items():
        if isinstance(exc, kind):
            code = getattr(exc, "code", None)
            return f"{type(exc).__name__} ({code}): {advice}"
    return f"{type(exc).__name__}: {exc}"


def main() -> list[str]:
    seen = []
    unacknowledged = openai.OpenAI(base_url=client().base_url, api_key="local", max_retries=0)
    attempts = [
        lambda: unacknowledged.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}]
        ),
        lambda: client(max_retries=0).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        ),
        lambda: client(max_retries=0).chat.completions.create(model=MODEL, messages=[]),
    ]
    for attempt in attempts:
        try:
            attempt()
        except openai.OpenAIError as exc:
            seen.append(explain(exc))
            print(seen[-1])
    return seen


if __name__ == "__main__":
    main()
