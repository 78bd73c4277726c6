"""The same worker in Python, with nothing but ctypes on libc: sem_open,
sem_wait, sem_post -- the calls posix_ipc makes. usage: worker.py NAME GATE ID JOBS"""
import ctypes
import ctypes.util
import random
import sys
import time

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.sem_open.restype = ctypes.c_void_p
libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.sem_wait.argtypes = [ctypes.c_void_p]
libc.sem_post.argtypes = [ctypes.c_void_p]
libc.sem_close.argtypes = [ctypes.c_void_p]

name, gate_name, wid, jobs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def sem_open(n):
    h = libc.sem_open(("/" + n.lstrip("/")).encode(), 0)
    if not h:
        raise OSError(ctypes.get_errno(), "sem_open failed: " + n)
    return h


sem = sem_open(name)
gate = sem_open(gate_name)
print("ready", flush=True)
libc.sem_wait(gate)
libc.sem_close(gate)
for job in range(1, jobs + 1):
    libc.sem_wait(sem)
    try:
        print(f"enter {time.monotonic_ns()} {wid} job {job}", flush=True)
        time.sleep(0.12 + random.random() * 0.08)
        print(f"exit {time.monotonic_ns()} {wid} job {job}", flush=True)
    finally:
        libc.sem_post(sem)
libc.sem_close(sem)
