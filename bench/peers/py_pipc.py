"""Python side of bench/python.bench.mjs, through pipc and, for comparison,
multiprocessing. Every mode prints the microseconds per round trip it measured
(or nothing, for a responder).

    py_pipc.py sem-pong PING PONG N robust|plain   responder: acquire PING, release PONG
    py_pipc.py sem-py N robust|plain               Python<->Python ping-pong through pipc (fork)
    py_pipc.py sem-mp N                            Python<->Python multiprocessing.Semaphore pair
    py_pipc.py q-echo A B N                        responder: get from A, put to B
    py_pipc.py q-py N [mq|shm]                     Python<->Python pipc.Queue round trips (fork)
    py_pipc.py q-mp N                              Python<->Python multiprocessing.Queue round trips
"""
import multiprocessing as mp
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

import pipc  # noqa: E402


def sem(name: str, kind: str, create: bool = False) -> pipc.Semaphore:
    return pipc.Semaphore(name, 0, create=create, robust=kind == "robust")


def sem_pong(ping: str, pong: str, n: int, kind: str) -> None:
    a, b = sem(ping, kind), sem(pong, kind)
    for _ in range(n):
        a.acquire()
        b.release()
    a.close()
    b.close()


def q_echo(a: str, b: str, n: int) -> None:
    src, dst = pipc.Queue(a, create=False), pipc.Queue(b, create=False)
    for _ in range(n):
        dst.put(src.get())
    src.close()
    dst.close()


def timed(n: int, step) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    tag = f"pipc-bench-py-{os.getpid()}"
    if mode == "sem-pong":
        sem_pong(args[0], args[1], int(args[2]), args[3])
    elif mode == "q-echo":
        q_echo(args[0], args[1], int(args[2]))
    elif mode == "sem-py":
        n, kind = int(args[0]), args[1]
        ping, pong = sem(tag + "-a", kind, True), sem(tag + "-b", kind, True)
        child = mp.get_context("fork").Process(target=sem_pong, args=(ping.name, pong.name, n, kind))
        child.start()

        def step() -> None:
            ping.release()
            pong.acquire()

        print(timed(n, step))
        child.join()
        for s in (ping, pong):
            s.close()
            s.unlink()
    elif mode == "sem-mp":
        n = int(args[0])
        ctx = mp.get_context("fork")
        ping, pong = ctx.Semaphore(0), ctx.Semaphore(0)

        def pong_loop() -> None:
            for _ in range(n):
                ping.acquire()
                pong.release()

        child = ctx.Process(target=pong_loop)
        child.start()

        def step() -> None:
            ping.release()
            pong.acquire()

        print(timed(n, step))
        child.join()
    elif mode == "q-py":
        n = int(args[0])
        t = args[1] if len(args) > 1 else "mq"
        a, b = pipc.Queue(f"{tag}-qa-{t}", 10, transport=t), pipc.Queue(f"{tag}-qb-{t}", 10, transport=t)
        child = mp.get_context("fork").Process(target=q_echo, args=(a.name, b.name, n))
        child.start()
        item = {"id": 1, "payload": "x" * 100}

        def step() -> None:
            a.put(item)
            b.get()

        print(timed(n, step))
        child.join()
        for q in (a, b):
            q.close()
            q.unlink()
    elif mode == "q-mp":
        n = int(args[0])
        ctx = mp.get_context("fork")
        a, b = ctx.Queue(10), ctx.Queue(10)

        def echo() -> None:
            for _ in range(n):
                b.put(a.get())

        child = ctx.Process(target=echo)
        child.start()
        item = {"id": 1, "payload": "x" * 100}

        def step() -> None:
            a.put(item)
            b.get()

        print(timed(n, step))
        child.join()
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
