"""Peer: Python's multiprocessing.Queue between two processes (pickle, a
feeder thread and a pipe underneath).

queue_mp.py SIZE KIND N_RTT N_TP -> one JSON line
  {"rtt_median_us": .., "rtt_p99_us": .., "rate": ..}
KIND: raw (a bytes item of SIZE) or json (a dict whose JSON is about SIZE).
"""
import json
import multiprocessing as mp
import sys
import time


def item_for(size, kind):
    if kind == "raw":
        return bytes(size)
    return {"id": 1, "s": "x" * max(0, size - 20)}


def child(req, resp, n_rtt, n_tp):
    for _ in range(n_rtt):
        resp.put(req.get())
    for _ in range(n_tp):
        req.get()
    resp.put(b"done")


def main():
    size, kind, n_rtt, n_tp = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    req, resp = mp.Queue(), mp.Queue()
    p = mp.Process(target=child, args=(req, resp, n_rtt, n_tp))
    p.start()
    item = item_for(size, kind)
    lat = []
    for _ in range(n_rtt):
        t0 = time.perf_counter()
        req.put(item)
        resp.get()
        lat.append((time.perf_counter() - t0) * 1e6)
    t0 = time.perf_counter()
    for _ in range(n_tp):
        req.put(item)
    resp.get()
    dt = time.perf_counter() - t0
    p.join()
    lat.sort()
    print(json.dumps({"rtt_median_us": lat[len(lat) // 2], "rtt_p99_us": lat[int(len(lat) * 0.99)],
                      "rate": n_tp / dt}))


if __name__ == "__main__":
    main()
