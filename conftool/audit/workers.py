"""SSH sessions in worker processes: the audit's sessions spread over more than one CPU.

Netmiko and paramiko are Python: every session's protocol work (packets, channel reads, Netmiko's prompt polling)
holds the interpreter lock, so one process with 64 session threads uses at most one core however many the NOC
machine has, and the main process's own work (live view, rendering intended configs for drift) waits for the same
lock. `SessionPool` starts N worker processes (`python -m conftool.audit.workers`) at the start of a run; each
runs up to `threads` sessions at once in threads. Requests and results cross the worker's stdin/stdout as
length-prefixed pickles: only our own processes on both ends, so nothing untrusted is ever unpickled. Results come
back per session as they finish, so the live view and the per-site timeouts work as with in-process threads.

Only two functions can be called, by name: `facts` (a router's Netmiko session, `conftool.audit.facts.gather`)
and `host` (a Linux host's SSH exec, `conftool.audit.hostfacts.gather_with`). A worker that dies fails its
pending sessions as `error` findings; it never hangs the run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import struct
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

logger = logging.getLogger(__name__)

_LEN = struct.Struct("!I")


def default_procs(sessions: int) -> int:
    """Worker processes for a run (0 = threads in the audit's own process): `LIENTHONG_AUDIT_PROCS`, default 0.

    Measured on the full lab (bench/results/audit.json, `timings`): 140 router sessions cost the audit's own
    process about 2 CPU-seconds in 7.6 s of wall time, so the interpreter lock was not what limited it (the
    devices' side and the machine were), and the workers' start (~1 s of imports each) made runs slower. They
    stay available for a NOC machine with many cores and many more devices. `sessions` is kept for that policy.
    """
    env = os.environ.get("LIENTHONG_AUDIT_PROCS")
    if env is not None and env.strip().isdigit():
        return int(env)
    return 0


def _functions() -> dict[str, Any]:
    from conftool.audit import facts, hostfacts

    return {"facts": facts.gather, "host": hostfacts.gather_with}


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.reader: asyncio.Task[None] | None = None


class SessionPool:
    """`await pool.call("facts", *args)` runs one session in a worker process and returns its result."""

    def __init__(self, procs: int, threads: int) -> None:
        self.procs = procs
        self.threads = threads
        self._workers: list[_Worker] = []
        self._ids = itertools.count()
        self._next = itertools.cycle(range(max(1, procs)))

    async def start(self) -> None:
        for _ in range(self.procs):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "conftool.audit.workers", str(self.threads),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            w = _Worker(proc)
            w.reader = asyncio.ensure_future(self._read(w))
            self._workers.append(w)

    async def _read(self, w: _Worker) -> None:
        assert w.proc.stdout is not None
        try:
            while True:
                head = await w.proc.stdout.readexactly(_LEN.size)
                ident, ok, value = pickle.loads(await w.proc.stdout.readexactly(_LEN.unpack(head)[0]))
                fut = w.pending.pop(ident, None)
                if fut is not None and not fut.done():
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(RuntimeError(value))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        for fut in w.pending.values():
            if not fut.done():
                fut.set_exception(RuntimeError(f"audit worker process exited ({w.proc.returncode})"))
        w.pending.clear()

    async def call(self, fn: str, *args: Any) -> Any:
        w = self._workers[next(self._next) % len(self._workers)]
        ident = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if w.reader is None or w.reader.done():
            raise RuntimeError("audit worker process is not running")
        w.pending[ident] = fut
        data = pickle.dumps((ident, fn, args))
        assert w.proc.stdin is not None
        try:
            w.proc.stdin.write(_LEN.pack(len(data)) + data)
            await w.proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:  # the worker is gone (broken pipe, closing transport)
            w.pending.pop(ident, None)
            raise RuntimeError(f"audit worker process is not running ({exc.__class__.__name__})") from None
        try:
            return await fut
        finally:
            w.pending.pop(ident, None)  # a caller that timed out leaves nothing behind

    async def close(self) -> None:
        """Workers finish on end of input; a session still stuck past its timeout is not waited for."""
        for w in self._workers:
            if w.proc.stdin is not None and not w.proc.stdin.is_closing():
                w.proc.stdin.close()
        for w in self._workers:
            try:
                await asyncio.wait_for(w.proc.wait(), 2)
            except TimeoutError:
                w.proc.kill()
                await w.proc.wait()
            if w.reader is not None:
                await w.reader


# ---- the worker process ------------------------------------------------------------------------------
def _serve(threads: int, inp: BinaryIO, out: BinaryIO) -> None:
    fns = _functions()  # imports Netmiko once, before the first request is read
    lock = threading.Lock()

    def reply(ident: int, ok: bool, value: Any) -> None:
        data = pickle.dumps((ident, ok, value))
        with lock:
            out.write(_LEN.pack(len(data)) + data)
            out.flush()

    def run(ident: int, fn: str, args: tuple[Any, ...]) -> None:
        try:
            reply(ident, True, fns[fn](*args))
        except BaseException as exc:  # becomes the caller's exception, never a dead worker
            reply(ident, False, f"{exc.__class__.__name__}: {exc}")

    pool = ThreadPoolExecutor(threads, thread_name_prefix="audit-worker")
    while True:
        head = inp.read(_LEN.size)
        if len(head) < _LEN.size:
            break
        ident, fn, args = pickle.loads(inp.read(_LEN.unpack(head)[0]))
        pool.submit(run, ident, fn, args)
    out.flush()
    os._exit(0)  # end of input: the run is over; sessions stuck past their timeout must not keep us alive


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    out = os.fdopen(os.dup(1), "wb")  # the protocol's own copy of stdout …
    os.dup2(2, 1)  # … and anything a library prints goes to stderr, not into the protocol
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 32, sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
