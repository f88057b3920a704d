"""Background work of the materializer, ordered per resource."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("do_emulator")


class Jobs:
    """Background work, ordered per key: a job runs after every earlier job that shares a key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, threading.Event] = {}
        self._pending: set[threading.Event] = set()

    def submit(self, keys: tuple[str, ...], fn: Callable[[], None], after_all: bool = False,
               name: str = "job") -> None:
        done = threading.Event()
        with self._lock:
            waits = list(self._pending) if after_all else [self._last[k] for k in keys if k in self._last]
            for key in keys:
                self._last[key] = done
            self._pending.add(done)

        def run() -> None:
            for event in waits:
                event.wait()
            try:
                fn()
            except Exception:
                log.exception("background job %s failed", name)
            finally:
                done.set()
                with self._lock:
                    self._pending.discard(done)
                    for key in [k for k, v in self._last.items() if v is done]:
                        del self._last[key]

        threading.Thread(target=run, name=f"emulator-{name}", daemon=True).start()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                events = list(self._pending)
            if not events:
                return True
            events[0].wait(max(0.0, deadline - time.monotonic()))
        return self.pending() == 0
