"""`medgemma-ask`: ask the gateway a question from a terminal, optionally about an image; streams the answer."""

from __future__ import annotations

import argparse
import os
import sys

import openai
from rich.console import Console

from clients._common import API_KEY, BASE_URL, MODEL, image_data_url

ACK_ENV = "HAI_DEF_ACKNOWLEDGED"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="medgemma-ask", description=__doc__)
    p.add_argument("question")
    p.add_argument("--image", help="a local PNG or JPEG to ask about")
    p.add_argument("--base-url", default=BASE_URL)
    p.add_argument("--model", default=MODEL)
    p.add_argument("--api-key", default=API_KEY)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument(
        "--acknowledge-terms",
        metavar="VERSION",
        default=os.environ.get(ACK_ENV),
        help=f"acknowledge the HAI-DEF terms of use, e.g. 2024-11-15 (or set {ACK_ENV})",
    )
    return p.parse_args(argv)


def content(question: str, image: str | None) -> str | list[dict]:
    if image is None:
        return question
    return [
        {"type": "image_url", "image_url": {"url": image_data_url(image)}},
        {"type": "text", "text": question},
    ]


def ask(args: argparse.Namespace, out: Console) -> str:
    headers = {"HAI-DEF-Acknowledged": args.acknowledge_terms} if args.acknowledge_terms else {}
    client = openai.OpenAI(
        base_url=args.base_url, api_key=args.api_key, default_headers=headers, max_retries=0
    )
    stream = client.chat.completions.create(
        model=args.model,
        messages=[{"role": "user", "content": content(args.question, args.image)}],
        max_tokens=args.max_tokens,
        stream=True,
    )
    text, disclaimer = [], None
    for chunk in stream:
        disclaimer = (chunk.model_extra or {}).get("disclaimer", disclaimer)
        if chunk.choices and chunk.choices[0].delta.content and disclaimer is None:
            text.append(chunk.choices[0].delta.content)
            out.print(chunk.choices[0].delta.content, end="", markup=False, highlight=False)
    out.print()
    if disclaimer:
        out.print(f"\n[yellow]Disclaimer:[/yellow] {disclaimer}")
    return "".join(text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out, err = Console(), Console(stderr=True)
    try:
        ask(args, out)
    except openai.APIConnectionError:
        err.print(f"[red]Cannot reach the gateway at {args.base_url}.[/red] Is `make serve` running?")
        return 3
    except openai.PermissionDeniedError as exc:
        err.print(f"[red]Refused:[/red] {exc.message}")
        err.print(f"Read the terms, then run again with --acknowledge-terms VERSION (or set {ACK_ENV}).")
        return 4
    except openai.APIStatusError as exc:
        err.print(f"[red]{exc.status_code} {type(exc).__name__}:[/red] {exc.message}")
        return 5
    except FileNotFoundError as exc:
        err.print(f"[red]No such image:[/red] {exc.filename}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
