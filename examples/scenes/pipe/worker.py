# Scene 4 helper: a python3 worker that got one end of a Node Pipe() as fd 3.
# It reads JSON jobs with recv_bytes, answers each with send_bytes, and stops
# at EOFError when Node closes its end.
import json
import os
from multiprocessing.connection import Connection

conn = Connection(3)
done = 0
while True:
    try:
        job = json.loads(conn.recv_bytes())
    except EOFError:
        break
    conn.send_bytes(json.dumps({"id": job["id"], "square": job["n"] ** 2, "pid": os.getpid()}).encode())
    done += 1
print(f"  [python worker {os.getpid()}] pipe closed by Node after {done} jobs; exiting")
