"""`prefetched`: an iterator's items produced by a background thread a few ahead, in order.

This module sits at the bottom of the package and imports nothing from dcnrank, so the
encoder (`fit_and_encode`) and the streamed training share it.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")


def prefetched(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """`items`, produced by a background thread up to `depth` ahead, in the same order.

    Reading and encoding the next chunks (pyarrow and numpy, which release the GIL)
    then overlaps training on the current one, or parsing the next slice of a table
    overlaps encoding the current one. The producer runs in a copy of the caller's
    context (`contextvars`), so it sees what the caller set (`rows_from`'s first row).
    An error in the producer is raised here; closing the iterator (or an error in the
    consumer) stops the producer, which closes `items` (and the file it reads), and
    waits for its thread to end, so no reader is left working when the error reaches
    the caller.

    Example:
        >>> list(prefetched(iter(range(5))))
        [0, 1, 2, 3, 4]
    """
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(("done", None))
        except BaseException as error:  # handed to the consumer
            box.put(("error", error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator: close its file here, on the thread that reads it
                close()

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(produce,), name="dcnrank-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                box.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
