# Python's multiprocessing.Pipe between two python3 processes, measured the way
# bench/pipe.bench.mjs measures the Node rows: round trip of a small JSON
# object (send_bytes/recv_bytes + json), throughput of 64 KiB and 4 MiB
# frames. Prints one JSON object: rt_us, tp64k, tp4m (MB/s), medians.
import json
import multiprocessing as mp
import statistics
import sys
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
PINGS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000


def echo(conn, other):
    # The fork copied the parent's end too: close it, or EOF never comes.
    other.close()
    try:
        while True:
            conn.send_bytes(json.dumps(json.loads(conn.recv_bytes())).encode())
    except EOFError:
        pass


def sink(conn, other, count):
    other.close()
    conn.send_bytes(b'"ready"')
    for _ in range(count):
        conn.recv_bytes()
    conn.send_bytes(b'"done"')


def round_trip():
    a, b = mp.Pipe()
    p = mp.Process(target=echo, args=(b, a))
    p.start()
    b.close()
    msg = {"op": "ping", "id": 0, "payload": "x" * 32}
    for _ in range(3000):
        a.send_bytes(json.dumps(msg).encode())
        json.loads(a.recv_bytes())
    xs = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for i in range(PINGS):
            msg["id"] = i
            a.send_bytes(json.dumps(msg).encode())
            json.loads(a.recv_bytes())
        xs.append((time.perf_counter() - t0) / PINGS * 1e6)
    a.close()
    p.join()
    return statistics.median(xs)


def throughput(size, count):
    buf = bytes(size)
    xs = []
    for _ in range(ROUNDS):
        a, b = mp.Pipe()
        p = mp.Process(target=sink, args=(b, a, count))
        p.start()
        b.close()
        a.recv_bytes()  # the child's "ready": start-up is not throughput
        t0 = time.perf_counter()
        for _ in range(count):
            a.send_bytes(buf)
        a.recv_bytes()
        xs.append(size * count / (time.perf_counter() - t0) / 1e6)
        a.close()
        p.join()
    return statistics.median(xs)


if __name__ == "__main__":
    mp.set_start_method("fork")
    print(json.dumps({
        "rt_us": round_trip(),
        "tp64k": throughput(64 * 1024, 2000),
        "tp4m": throughput(4 * 1024 * 1024, 40),
    }))
