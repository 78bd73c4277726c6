"""The same worker in Python, through the pipc module that ships with
posix-ipc (run with PYTHONPATH=$(npx posix-ipc python-path)): the same
crash-safe semaphore the node workers open, by name.
usage: worker.py NAME GATE ID JOBS"""
import random
import sys
import time

import pipc

name, gate_name, wid, jobs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

sem = pipc.Semaphore(name, create=False)
gate = pipc.Semaphore(gate_name, create=False)
print("ready", flush=True)
gate.acquire()
gate.close()
for job in range(1, jobs + 1):
    with sem:
        print(f"enter {time.monotonic_ns()} {wid} job {job}", flush=True)
        time.sleep(0.12 + random.random() * 0.08)
        print(f"exit {time.monotonic_ns()} {wid} job {job}", flush=True)
sem.close()
