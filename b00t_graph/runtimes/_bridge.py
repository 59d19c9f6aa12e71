"""Run asyncio-only code (aiodocker) for callers on any anyio backend.

Under asyncio the coroutine is simply awaited. Under trio it runs on a private
asyncio loop in a helper thread (one per bridge); the trio task sleeps on a
trio event that the asyncio side sets through the trio token, so the trio loop
is never blocked and no worker thread is held per call. Cancelling the trio
caller cancels the asyncio task and waits (briefly, shielded) for it to finish,
so no request is left running behind the caller's back.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
import sniffio

T = TypeVar("T")

#: how long a cancelled trio caller waits for the asyncio task to wind down
CANCEL_GRACE = 5.0


class AsyncioBridge:
    """Awaits asyncio coroutines from asyncio or trio. The mode is fixed by the first call."""

    def __init__(self, thread_name: str = "b00t-graph-asyncio") -> None:
        self._thread_name = thread_name
        self._mode: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def mode(self) -> str | None:
        """``"asyncio"`` (direct), ``"thread"`` (helper loop) or ``None`` before the first call."""
        return self._mode

    async def run(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Await ``fn()`` on an asyncio loop and return its result (or raise its exception)."""
        lib = sniffio.current_async_library()
        mode = "asyncio" if lib == "asyncio" else "thread"
        if self._mode is None:
            self._mode = mode
        elif self._mode != mode:
            raise RuntimeError(f"this runtime was first used under {self._mode}, now called from {lib}")
        if mode == "asyncio":
            return await fn()
        if lib != "trio":
            raise RuntimeError(f"unsupported async library {lib!r}")
        return await self._run_trio(fn)

    def caller_callback(self, fn: Callable[..., None]) -> Callable[..., None]:
        """Wrap ``fn`` so the asyncio side can call it; it then runs on the caller's thread, never blocking.

        Call this from the caller (asyncio or trio) task; use the result inside coroutines given to :meth:`run`.
        """
        if sniffio.current_async_library() != "trio":
            return fn  # the coroutines run on the caller's own loop
        import trio

        token = trio.lowlevel.current_trio_token()

        def call(*args: Any) -> None:
            try:
                token.run_sync_soon(fn, *args)
            except trio.RunFinishedError:
                pass

        return call

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            # daemon: a caller that forgets aclose() must not keep the interpreter alive
            thread = threading.Thread(target=main, name=self._thread_name, daemon=True)
            thread.start()
            ready.wait()
            self._loop, self._thread = loop, thread
        return self._loop

    async def _run_trio(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        import trio

        loop = self._ensure_loop()
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        box: dict[str, asyncio.Task[T]] = {}

        def wake(_: object) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        def launch() -> None:
            # A fresh context: nothing of the trio caller's context (sniffio, anyio) leaks in.
            task = loop.create_task(fn(), context=contextvars.Context())
            box["task"] = task
            task.add_done_callback(wake)

        loop.call_soon_threadsafe(launch)
        try:
            await done.wait()
        except BaseException:
            # launch() was queued first, so box["task"] exists by the time cancel() runs
            loop.call_soon_threadsafe(lambda: box["task"].cancel())
            with trio.CancelScope(shield=True), trio.move_on_after(CANCEL_GRACE):
                await done.wait()
            raise
        task = box["task"]
        if task.cancelled():
            raise anyio.get_cancelled_exc_class()()  # cancelled from the asyncio side (aclose)
        return task.result()

    async def aclose(self, final: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run ``final()`` (closing clients) where they live, then stop the helper loop if any."""
        try:
            if final is not None and self._mode is not None:
                await self.run(final)
        finally:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            if loop is not None and thread is not None:

                async def shutdown() -> None:
                    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    await loop.shutdown_asyncgens()

                fut = asyncio.run_coroutine_threadsafe(shutdown(), loop)

                def finish() -> None:
                    try:
                        fut.result(CANCEL_GRACE)
                    finally:
                        loop.call_soon_threadsafe(loop.stop)
                        thread.join(CANCEL_GRACE)

                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(finish)
                if not thread.is_alive():
                    loop.close()
