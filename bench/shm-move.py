"""Python peer for bench/shm.bench.mjs: moves SIZE bytes from one process to
another through multiprocessing.shared_memory (write, signal, copy out), as
the Node benchmark does with SharedMemory. Prints {"median_ms": ...}.

    python3 shm-move.py SIZE ROUNDS
"""
import json
import statistics
import sys
import time
from multiprocessing import Pipe, Process, shared_memory


def receiver(name, size, conn):
    shm = shared_memory.SharedMemory(name=name)
    dst = memoryview(bytearray(size))
    while conn.recv() == "ready":
        # Copy out, as the Node receiver does. (A bytearray slice assignment
        # from a memoryview is ~60x slower than this memoryview-to-memoryview copy.)
        dst[:] = shm.buf[:size]
        conn.send("done")
    dst.release()
    shm.close()


def main():
    size, rounds = int(sys.argv[1]), int(sys.argv[2])
    src = bytes(range(256)) * (size // 256)
    shm = shared_memory.SharedMemory(create=True, size=size)
    try:
        parent, child = Pipe()
        p = Process(target=receiver, args=(shm.name, size, child))
        p.start()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            shm.buf[:size] = src
            parent.send("ready")
            assert parent.recv() == "done"
            times.append((time.perf_counter() - t0) * 1000)
        parent.send("stop")
        p.join()
        print(json.dumps({"median_ms": statistics.median(times)}))
    finally:
        shm.close()
        shm.unlink()


if __name__ == "__main__":
    main()
