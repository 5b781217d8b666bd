"""Stream an answer token by token; the last chunk before [DONE] carries the disclaimer."""

import sys

from clients._common import MODEL, client


def main(question: str = "Explain what a chest X-ray can and cannot show.") -> str:
    text = []
    stream = client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], max_tokens=64, stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()
    return "".join(text)


if __name__ == "__main__":
    main(*sys.argv[1:])
