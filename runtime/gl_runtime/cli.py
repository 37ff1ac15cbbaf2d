"""`gl-agent-runtime`: start serving, fetch + verify + load, then serve until SIGTERM and drain.

Exit codes: 0 after a clean drain, 1 when the artifact cannot be fetched, verified or loaded,
2 for bad configuration.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web

from gl_runtime import config as configuration
from gl_runtime import fetch, loader, logs
from gl_runtime.metrics import Metrics
from gl_runtime.server import Runtime, build_app

# After the drain, connections still open get this long to close before the process exits.
SHUTDOWN_SECONDS = 2.0


def _load(config: configuration.Config) -> loader.LoadedAgent:
    if config.artifact_file:
        data = fetch.from_file(config.artifact_file, config.artifact_digest)
    else:
        data = fetch.from_s3(config.artifact_uri or "", config.artifact_digest, config.s3_endpoint)
    logs.info("artifact verified", digest=config.artifact_digest, sizeBytes=len(data),
              source=str(config.artifact_file or config.artifact_uri))
    return loader.load(data, config.work_dir)


async def _until_loaded(rt: Runtime, config: configuration.Config, stop: asyncio.Event) -> int | None:
    """Fetch, verify and load while /healthz already answers; None once ready, else the exit code."""
    loop = asyncio.get_running_loop()
    loading = asyncio.ensure_future(loop.run_in_executor(rt.executor, _load, config))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not loading.done():
        logs.info("stopped while loading the agent")
        return 0
    try:
        agent = loading.result()
    except (fetch.FetchError, loader.LoadError) as error:
        logs.error(str(error), error=type(error).__name__)
        return 1
    except Exception as error:  # anything else while loading is fatal too, with its traceback
        logs.error(f"loading the agent failed: {type(error).__name__}: {error}", exc_info=True)
        return 1
    rt.loaded(agent)
    logs.identify(rt.agent_label, rt.version_label)
    manifest = agent.manifest
    if config.version and config.version != manifest.version:
        logs.warning("GL_AGENT_VERSION differs from the version in the artifact's manifest",
                     manifestVersion=manifest.version)
    logs.info("ready", capabilities=sorted(agent.capabilities), entrypoint=manifest.entrypoint,
              digest=config.artifact_digest)
    return None


async def serve(config: configuration.Config) -> int:
    rt = Runtime(Metrics(), config.agent or "", config.version or "")
    runner = web.AppRunner(build_app(rt), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        logs.info("signal received", signal=signal.Signals(signum).name)
        stop.set()

    # Explicit handlers: as PID 1 in a container, a signal without one is ignored.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    code = 0
    try:
        await web.TCPSite(runner, config.host, config.port).start()
        logs.info("listening", host=config.host, port=config.port)
        failed = await _until_loaded(rt, config, stop)
        if failed is not None:
            code = failed
            return code
        await stop.wait()
        await rt.drain(config.drain_seconds)
        return code
    finally:
        await runner.cleanup()  # closes the listener, then the idle connections
        rt.executor.shutdown(wait=False, cancel_futures=True)
        logs.info("stopped", exitCode=code)


def main(argv: list[str] | None = None) -> None:
    logs.configure()
    try:
        config = configuration.parse(argv)
    except configuration.ConfigError as error:
        logs.error(f"configuration: {error}")
        sys.exit(2)
    logs.configure(config.log_level)
    logs.identify(config.agent, config.version)
    sys.exit(asyncio.run(serve(config)))


if __name__ == "__main__":  # the container image runs `python -m gl_runtime.cli`
    main()
