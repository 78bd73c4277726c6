"""The python3 side of scene 3: attaches to the shared array by name and sums
it in place (memoryview.cast, no copy).   python3 sum.py ARRAY_NAME N"""
import json
import sys
from multiprocessing import resource_tracker, shared_memory

name, n = sys.argv[1], int(sys.argv[2])
shm = shared_memory.SharedMemory(name=name)
# Python < 3.13 would unlink the segment at exit otherwise (3.13+: track=False).
resource_tracker.unregister(shm._name, "shared_memory")
values = shm.buf.cast("d")
total = sum(values[:n])
print(json.dumps({"sum": total, "count": n, "last": values[n - 1]}))
values.release()
shm.close()
