"""``Route``: the route class of every router here — a plain ``def`` endpoint runs in the thread
pool once per request, not twice.

FastAPI runs a synchronous endpoint in the thread pool and then, because the endpoint was
synchronous, validates its return value against the response model in the thread pool *again*
(``fastapi.routing.serialize_response``). Each hand-off to a worker thread and back costs far more
here than the work it carries: a proof or a checkpoint takes ~50 µs to build and ~0.3 ms per hop to
dispatch (docs/benchmarks.md, "API: the request path"). ``Route`` wraps a synchronous endpoint in a
coroutine that runs it in the thread pool, so FastAPI sees a coroutine endpoint: one hop for the
work, the response validated on the event loop (it is CPU only). The wrapper keeps the endpoint's
signature (``functools.wraps``: FastAPI reads parameters, dependencies and the return annotation
through ``__wrapped__``), its name and its docstring, so the OpenAPI document does not change.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


def offloaded(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` itself if it is a coroutine function, else a coroutine function running it in
    the thread pool."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return run


class Route(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, offloaded(endpoint), **kwargs)
