"""Ask one question and print the answer (which ends with the medical disclaimer)."""

import sys

from clients._common import MODEL, client


def main(question: str = "What are the typical radiographic signs of a pneumothorax?") -> str:
    answer = client().chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are a concise radiology assistant for software developers."},
            {"role": "user", "content": question},
        ],
        max_tokens=64,
    )
    print(answer.choices[0].message.content)
    print("disclaimer field:", answer.model_extra["disclaimer"])
    return answer.choices[0].message.content


if __name__ == "__main__":
    main(*sys.argv[1:])
