"""The python3 side of scene 3: attaches to the shared array by name through
the pipc module (PYTHONPATH=$(npx posix-ipc python-path)) and sums it in
place (no copy).   python3 sum.py ARRAY_NAME N"""
import json
import sys

import pipc

name, n = sys.argv[1], int(sys.argv[2])
grid = pipc.SharedArray("d", n, name=name, create=False)
values = grid.array
total = sum(values)
print(json.dumps({"sum": total, "count": n, "last": values[n - 1]}))
grid.close()
