"""Ask about a local PNG or JPEG file, sent as a base64 data URL (MedGemma takes one image per request)."""

import sys

from clients._common import MODEL, client, image_data_url


def main(image_path: str, question: str = "Describe the findings in this image.") -> str:
    answer = client().chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": image_data_url(image_path)}},
                    {"type": "text", "text": question},
                ],
            }
        ],
        max_tokens=64,
    )
    print(answer.choices[0].message.content)
    return answer.choices[0].message.content


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m clients.image_chat IMAGE [QUESTION]")
    main(*sys.argv[1:])
