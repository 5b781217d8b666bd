"""Send many requests at once with the async client; the engine batches them (continuous batching)."""

import asyncio
import sys

from clients._common import MODEL, async_client

QUESTIONS = [f"In one sentence, what is finding number {i} on a chest X-ray report?" for i in range(32)]


async def ask_all(questions: list[str], concurrency: int = 16) -> list[str]:
    client = async_client()
    gate = asyncio.Semaphore(concurrency)  # be a good neighbour: the gateway answers 429 past its cap

    async def ask(q: str) -> str:
        async with gate:
            out = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": q}], max_tokens=32
            )
            return out.choices[0].message.content

    try:
        return await asyncio.gather(*(ask(q) for q in questions))
    finally:
        await client.close()


def main(n: str = "32") -> list[str]:
    answers = asyncio.run(ask_all(QUESTIONS[: int(n)]))
    print(f"{len(answers)} answers")
    return answers


if __name__ == "__main__":
    main(*sys.argv[1:])
