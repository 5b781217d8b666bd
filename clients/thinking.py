"""Stream an answer with MedGemma's thinking and print the thought and the answer apart.

The thought arrives in each delta's `reasoning` field (vLLM 0.32's name; older servers say `reasoning_content`), the
answer in `content`, which alone ends with the disclaimer. Thinking is on when the gateway's profile says
`gateway.disclaimer.thinking: true`; MedGemma may also think unprompted. The CPU demo model never thinks: its
answer is noise and the thought section stays empty.
"""

import sys
from typing import Any

from clients._common import MODEL, client

# Google's quick-start notebook gives MedGemma 1,300 new tokens with thinking on (300 without): thoughts are long.
THINKING_BUDGET = 1300


def reasoning_of(delta: Any) -> str | None:
    extra = delta.model_extra or {}
    return extra.get("reasoning") or extra.get("reasoning_content")


def main(
    question: str = "A 60-year-old smoker has a 2 cm spiculated lung nodule. What are the next steps?",
    max_tokens: int | str = THINKING_BUDGET,
) -> tuple[str, str]:
    thought: list[str] = []
    answer: list[str] = []
    shown = None
    stream = client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], max_tokens=int(max_tokens), stream=True
    )
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for title, text, parts in (
            ("Thought", reasoning_of(delta), thought),
            ("Answer", delta.content, answer),
        ):
            if text:
                if shown != title:
                    print(f"\n=== {title} ===", flush=True)
                    shown = title
                print(text, end="", flush=True)
                parts.append(text)
    print()
    if not thought:
        print("\n=== Thought ===\n(none: the model answered directly)")
    return "".join(thought), "".join(answer)


if __name__ == "__main__":
    main(*sys.argv[1:])
