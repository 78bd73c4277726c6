# python3 peers of bench/pickle.bench.mjs.
#
#   pickle_bench.py echo pickle|json   fd 3 is a Pipe() end from Node: echo every message
#                                      with Connection.recv()/send() (pickle), or with
#                                      recv_bytes()/send_bytes() + json, until EOF.
#   pickle_bench.py driver PINGS       Python to Python: a multiprocessing.Pipe() to a forked
#                                      echo child; for each "go" line on stdin, times PINGS
#                                      send()/recv() round trips of the small object and prints
#                                      the microseconds per round trip; EOF ends it.
#   pickle_bench.py codec ITERS        prints JSON: ns per pickle.dumps+loads and json.dumps+loads
#                                      of the small object and of the 64 KiB one.
import json
import multiprocessing as mp
import pickle
import sys
import time
from multiprocessing.connection import Connection

SMALL = {"op": "ping", "id": 12345, "payload": "x" * 32, "tags": [1, 2, 3], "ok": True, "score": 0.5}
BIG = [{"id": i, "name": "item-%d" % i, "tags": ["a", "b"], "score": i / 7} for i in range(1000)]


def echo_pickle(conn):
    try:
        while True:
            conn.send(conn.recv())
    except EOFError:
        pass


def echo_child(conn, other):
    other.close()
    echo_pickle(conn)


def main():
    mode = sys.argv[1]
    if mode == "echo":
        conn = Connection(3)
        if sys.argv[2] == "pickle":
            echo_pickle(conn)
        else:
            try:
                while True:
                    conn.send_bytes(json.dumps(json.loads(conn.recv_bytes())).encode())
            except EOFError:
                pass
    elif mode == "driver":
        pings = int(sys.argv[2])
        a, b = mp.Pipe()
        p = mp.Process(target=echo_child, args=(b, a))
        p.start()
        b.close()
        msg = dict(SMALL)
        for _ in range(2000):
            a.send(msg)
            a.recv()
        print("READY", flush=True)
        for line in sys.stdin:
            if line.strip() != "go":
                continue
            t0 = time.perf_counter()
            for i in range(pings):
                msg["id"] = i
                a.send(msg)
                a.recv()
            print((time.perf_counter() - t0) / pings * 1e6, flush=True)
        a.close()
        p.join()
    elif mode == "codec":
        iters = int(sys.argv[2])
        out = {}
        for name, obj, n in (("small", SMALL, iters), ("64k", BIG, max(1, iters // 500))):
            t0 = time.perf_counter()
            for _ in range(n):
                pickle.loads(pickle.dumps(obj, protocol=4))
            out["pickle_" + name] = (time.perf_counter() - t0) / n * 1e9
            t0 = time.perf_counter()
            for _ in range(n):
                json.loads(json.dumps(obj))
            out["json_" + name] = (time.perf_counter() - t0) / n * 1e9
            out["pickle_bytes_" + name] = len(pickle.dumps(obj, protocol=4))
            out["json_bytes_" + name] = len(json.dumps(obj))
        print(json.dumps(out))


if __name__ == "__main__":
    main()
