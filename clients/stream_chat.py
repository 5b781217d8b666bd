"""Stream an answer token by token; the last chunk before [DONE] carries the disclaimer."""

import sys

from clients._common import MODEL, client, print_stream


def main(question: str = "Explain what a chest X-ray can and cannot show.") -> str:
    stream = client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], max_tokens=64, stream=True
    )
    return print_stream(stream)


if __name__ == "__main__":
    main(*sys.argv[1:])
