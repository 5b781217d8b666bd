"""The Responses API through the gateway: one answer whole, one streamed; each ends with the medical disclaimer,
which the response object also carries in its `disclaimer` field. The gateway stores no responses, so a follow-up
sends the earlier turns in `input` (previous_response_id is refused)."""

import sys

from clients._common import MODEL, client


def main(question: str = "What are the typical radiographic signs of a pneumothorax?") -> str:
    openai = client()
    answer = openai.responses.create(
        model=MODEL,
        instructions="You are a concise radiology assistant for software developers.",
        input=question,
        max_output_tokens=64,
    )
    print(answer.output_text)
    print("disclaimer field:", answer.model_extra["disclaimer"])

    # Streamed: the disclaimer arrives as the last output_text delta, before response.completed.
    with openai.responses.stream(model=MODEL, input=question, max_output_tokens=64) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                print(event.delta, end="", flush=True)
        final = stream.get_final_response()
    print()
    print("streamed disclaimer field:", final.model_extra["disclaimer"])
    return final.output_text


if __name__ == "__main__":
    main(*sys.argv[1:])
