"""How long one request may wait on the engine: a total deadline for whole answers, a first-byte then a stall
deadline for streams. Pure: the connection's timer asks `check` what is due and when to look again."""

from __future__ import annotations

import math
from typing import NamedTuple


class Limits(NamedTuple):
    """`stall_s` None: `first_s` bounds the whole answer, from sending to its end (a non-streamed answer's engine
    sends nothing until it is done). Otherwise a stream: `first_s` bounds sending to the first body byte (vLLM, via
    uvicorn, sends the head at once and the first chunk only after queueing and prefill), then `stall_s` bounds
    the silence between reads; time the caller kept reading paused is its own slowness, not the engine's."""

    first_s: float
    stall_s: float | None = None


class Due(NamedTuple):
    at: float  # the limit in force runs out at this time (inf: none is running)
    again: float  # when to look again if `at` has not come
    why: str  # the timeout's message if it has: which limit, never an address


def first_check(limits: Limits, sent_at: float) -> float:
    """When the timer first looks, so a stream that starts then stalls is caught by its stall limit."""
    stall = limits.stall_s
    return sent_at + (limits.first_s if stall is None else min(limits.first_s, stall))


def check(
    limits: Limits, now: float, sent_at: float, last_read: float, *, started: bool, paused: bool
) -> Due:
    """What is due for one request: `started` once a body byte came, `paused` while the caller is behind (the
    caller resets `last_read` when it resumes reading)."""
    stall = limits.stall_s
    if stall is None:
        at = sent_at + limits.first_s
        return Due(at, at, f"no complete answer within {limits.first_s:g} s, the total limit")
    if not started:
        at = sent_at + limits.first_s
        return Due(
            at,
            min(at, now + stall),
            f"the stream sent no first byte within {limits.first_s:g} s, the first-byte limit",
        )
    if paused:
        return Due(math.inf, now + stall, "")
    at = last_read + stall
    return Due(at, at, f"the stream sent nothing for {stall:g} s, the stall limit")
