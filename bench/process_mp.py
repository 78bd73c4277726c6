"""Python's multiprocessing beside posix-ipc's Process and Pool (bench/process.bench.mjs).

  python3 process_mp.py start spawn|fork SAMPLES   -> {"first": ms, "join": ms}
  python3 process_mp.py map PROCESSES ITEMS SAMPLES -> {"map": ms}

"first" is start() until the child's first message arrives (a Pipe, as the
Node side reads the child's first line); "join" is start() until join()
returns. Medians of SAMPLES after one warm-up.
"""
import json
import multiprocessing as mp
import statistics
import sys
import time


def target(conn):
    conn.send_bytes(b'ready\n')
    conn.close()


def square(x):
    return x * x


def start(method, samples):
    ctx = mp.get_context(method)
    firsts, joins = [], []
    for i in range(samples + 1):
        r, w = ctx.Pipe(duplex=False)
        t0 = time.perf_counter()
        p = ctx.Process(target=target, args=(w,))
        p.start()
        r.recv_bytes()
        t1 = time.perf_counter()
        p.join()
        t2 = time.perf_counter()
        w.close()
        r.close()
        if i:
            firsts.append((t1 - t0) * 1e3)
            joins.append((t2 - t0) * 1e3)
    return {'first': statistics.median(firsts), 'join': statistics.median(joins)}


def map_(processes, items, samples):
    data = list(range(items))
    with mp.Pool(processes) as pool:
        pool.map(square, data[:100])
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            out = pool.map(square, data)
            times.append((time.perf_counter() - t0) * 1e3)
            assert out[-1] == (items - 1) ** 2
    return {'map': statistics.median(times), 'method': mp.get_start_method()}


if __name__ == '__main__':
    if sys.argv[1] == 'start':
        print(json.dumps(start(sys.argv[2], int(sys.argv[3]))))
    else:
        print(json.dumps(map_(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
