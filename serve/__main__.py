"""`python -m serve` / `medgemma-serve`: parse arguments, load the profile, run. Nothing else lives here."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from serve import launcher
from serve.config import ConfigError, Profile, load_config, redacted
from serve.engine.command import ProfileError, vllm_command

if TYPE_CHECKING:
    from aiohttp import web

    from serve.gateway.engine_client.readiness import BackendProbe

log = logging.getLogger("serve")
T = TypeVar("T")
CACHE = Path(".cache/checkpoints")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="medgemma-serve", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "engine + gateway (the default way to serve)"),
        ("engine", "the engine alone, on its loopback port"),
        ("command", "print the vLLM command a profile gives, and exit"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument(
            "--profile", type=Path, help="a YAML in configs/ (default: GPU -> MedGemma, else demo)"
        )
        p.add_argument(
            "--accept-hai-def-terms",
            metavar="VERSION",
            help=f"accept the HAI-DEF terms (or set {launcher.ACCEPT_ENV})",
        )
        p.add_argument("--cache-dir", type=Path, default=CACHE, help="where demo checkpoints are built")
    gw = sub.add_parser("gateway", help="the gateway alone, in front of a running engine")
    gw.add_argument("--profile", type=Path)
    gw.add_argument("--upstream", help="engine base URL (default: the profile's engine port on 127.0.0.1)")
    mig = sub.add_parser("migrate", help="apply the acknowledgement store's schema migrations, and exit")
    mig.add_argument("--profile", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        profile = load_config(args.profile or launcher.default_profile())
        if args.command == "command":
            print(_engine_command(profile))
            return 0
        if args.command == "migrate":
            return _migrate(profile)
        if args.command == "gateway" and args.upstream:
            _check_upstream(args.upstream)
        if args.command != "gateway":
            launcher.check_operator_terms(profile, launcher.accepted_terms(args.accept_hai_def_terms))
        if args.command in ("up", "gateway"):
            _check_keys(profile)
        log.info("profile %s: %s", profile.name, json.dumps(redacted(profile)))
        return _run(_serve(args, profile))
    except (ConfigError, ProfileError, launcher.TermsNotAccepted) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _check_upstream(url: str) -> None:
    from serve.gateway.engine_client.http1 import origin

    try:
        origin(url)
    except ValueError as exc:
        raise ConfigError(f"--upstream: {exc}") from None


def _check_keys(profile: Profile) -> None:
    """A key source named but empty fails here, before the engine starts, never as local mode (ConfigError)."""
    from serve.gateway.admission.api_keys import KeyRing

    KeyRing.from_settings(profile.gateway)


def _migrate(profile: Profile) -> int:
    from serve.gateway.stores.base import StoreUnavailable
    from serve.gateway.stores.migrate import migrate_store

    try:
        print(_run(migrate_store(profile.gateway.terms)))
    except StoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _engine_command(profile: Profile) -> str:
    """The `vllm serve` line, or for the ray topology the Serve config (KubeRay's serveConfigV2 shape)."""
    if profile.topology.kind != "ray":
        return " ".join(vllm_command(profile))
    import yaml

    from serve.scaleout.ray_config import serve_application

    app = serve_application(profile, cpu=not launcher.has_nvidia_gpu())
    return yaml.safe_dump({"applications": [app]}, sort_keys=False).rstrip()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # only the import: an ImportError inside the run is the run's own failure
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _serve(args: argparse.Namespace, profile: Profile) -> int:
    stop, hurry = asyncio.Event(), asyncio.Event()  # the first SIGTERM/Ctrl-C drains; a second one hurries it

    def on_signal() -> None:
        (hurry if stop.is_set() else stop).set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    if args.command == "gateway":
        return await _gateway_only(args, profile, stop, hurry)
    model = await asyncio.to_thread(launcher.resolve_model, profile, args.cache_dir)
    supervisor = launcher.make_backend(profile, model, vllm=launcher.vllm_executable())
    runner = None
    try:
        await supervisor.start()
        if args.command == "up":
            probe = getattr(supervisor, "backend_status", None)  # the Ray app's replica states
            runner = await _start_gateway(profile, launcher.engine_url(profile), probe)
        _announce(profile, args.command, runner)
        await launcher.wait_for_stop(stop, supervisor)
        return 0
    except Exception as exc:
        log.error("%s", exc)
        hurry.set()  # the engine is gone: nothing in flight can finish, and nobody should wait for it
        return 1
    finally:
        if runner is not None:  # the gateway drains first, while the engine still answers what is in flight
            await _drain(runner, profile, hurry)
        await supervisor.stop()


async def _start_gateway(profile: Profile, upstream: str, probe: BackendProbe | None = None) -> web.AppRunner:
    from serve.gateway.app import GatewayConfig, create_app
    from serve.gateway.server import start_site

    app = create_app(GatewayConfig.from_profile(profile, upstream), backend=probe)
    return await start_site(app, profile.gateway.host, profile.gateway.port)


async def _gateway_only(
    args: argparse.Namespace, profile: Profile, stop: asyncio.Event, hurry: asyncio.Event
) -> int:
    runner = await _start_gateway(profile, args.upstream or launcher.engine_url(profile))
    _announce(profile, "gateway", runner)
    try:
        await stop.wait()
    finally:
        await _drain(runner, profile, hurry)
    return 0


async def _drain(runner: web.AppRunner, profile: Profile, hurry: asyncio.Event) -> None:
    from serve.gateway.drain import drain

    await drain(runner, profile.gateway.drain, hurry)


def _announce(profile: Profile, command: str, runner: web.AppRunner | None) -> None:
    if command == "engine":
        url = launcher.engine_url(profile) + "/v1"
        print(f"\nEngine ready (no gateway: no disclaimer, no terms check). Base URL: {url}\n", flush=True)
        return
    g = profile.gateway
    port = runner.addresses[0][1] if runner is not None else g.port  # the port chosen when the profile says 0
    print(
        f"\nReady. OpenAI base URL: http://{g.host}:{port}/v1   model: {profile.model.served_name}\n"
        f"Acknowledge the HAI-DEF terms with the header 'HAI-DEF-Acknowledged: {g.terms.version}' "
        f"(GET /v1/terms). Ctrl-C stops everything.\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
