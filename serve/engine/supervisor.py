"""Supervises the engine: waits for /health while watching the child, restarts crashes with bounded backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import aiohttp

from serve.config import EngineSettings
from serve.engine.process import Child, EngineDied, spawn, terminate, wait_exit

log = logging.getLogger("serve.engine")

Probe = Callable[[str], Awaitable[bool]]


class EngineStartTimeout(RuntimeError):
    """The engine stayed alive but never answered /health in time."""


async def http_probe(url: str) -> bool:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as s, s.get(url) as resp:
            return resp.status == 200
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


async def wait_healthy(
    child: Child,
    health_url: str,
    timeout_s: float,
    *,
    probe: Probe = http_probe,
    poll_s: float = 1.0,
    progress_every_s: float = 10.0,
) -> float:
    """Return seconds until healthy; raise EngineDied the moment the child exits, or on timeout."""
    start = last_note = time.monotonic()
    while True:
        if child.returncode is not None:
            await wait_exit(child)
            raise child.died()
        if await probe(health_url):
            return time.monotonic() - start
        now = time.monotonic()
        if now - start > timeout_s:
            raise EngineStartTimeout(f"engine not healthy at {health_url} after {timeout_s:.0f} s")
        if now - last_note >= progress_every_s:
            log.info("still waiting for the engine at %s (%.0f s)", health_url, now - start)
            last_note = now
        await asyncio.sleep(poll_s)


class Supervisor:
    """Start once (failing fast), then keep the engine alive until stop(); state is for /health and logs."""

    def __init__(
        self,
        argv: Sequence[str],
        health_url: str,
        settings: EngineSettings,
        *,
        env: Mapping[str, str] | None = None,
        probe: Probe = http_probe,
        echo: bool = True,
    ) -> None:
        self.argv, self.health_url, self.settings = list(argv), health_url, settings
        self.env, self.probe, self.echo = dict(env or {}), probe, echo
        self.state = "stopped"
        self.restarts = 0
        self.child: Child | None = None
        self._stopping = False
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> float:
        """Spawn and wait until healthy; a child that dies or hangs here is an error, not a restart."""
        self._stopping = False
        took = await self._launch()
        self._watcher = asyncio.create_task(self._watch())
        return took

    async def _launch(self) -> float:
        self.state = "starting"
        self.child = await spawn(self.argv, self.env, echo=self.echo)
        try:
            took = await wait_healthy(
                self.child, self.health_url, self.settings.startup_timeout_s, probe=self.probe
            )
        except BaseException:
            await terminate(self.child, self.settings.stop_grace_s)
            self.state = "failed"
            raise
        self.state = "ready"
        log.info("engine ready at %s after %.1f s", self.health_url, took)
        return took

    async def _watch(self) -> None:
        policy = self.settings.restart
        failures = 0
        while not self._stopping:
            assert self.child is not None
            began = time.monotonic()
            code = await wait_exit(self.child)
            if self._stopping:
                return
            await terminate(self.child, self.settings.stop_grace_s)  # its engine-core/workers, if orphaned
            failures = 1 if time.monotonic() - began > policy.reset_after_s else failures + 1
            if failures > policy.max_restarts:
                self.state = "failed"
                log.error("%s; giving up after %d restarts", self.child.died(), policy.max_restarts)
                return
            delay = min(policy.backoff_initial_s * 2 ** (failures - 1), policy.backoff_max_s)
            log.error(
                "engine crashed (code %s); restart %d/%d in %.1f s",
                code,
                failures,
                policy.max_restarts,
                delay,
            )
            self.state = "restarting"
            await asyncio.sleep(delay)
            with contextlib.suppress(EngineDied, EngineStartTimeout):
                await self._launch()
                self.restarts += 1

    async def wait(self) -> None:
        """Return when supervision ends (stopped, or restarts exhausted)."""
        if self._watcher is not None:
            await self._watcher

    async def stop(self) -> None:
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self.child is not None:
            code = await terminate(self.child, self.settings.stop_grace_s)
            log.info("engine stopped (code %s)", code)
        self.state = "stopped"
