# Scene 4 helper: a python3 client of Node's Listener, via
# multiprocessing.connection.Client and its authkey handshake.
import json
import os
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client

address, key, who = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
try:
    conn = Client(address, authkey=key)
except AuthenticationError as e:
    print(f"  [python {who} {os.getpid()}] turned away: {e}")
    sys.exit(3)
conn.send_bytes(json.dumps({"hello": "from python", "who": who}).encode())
reply = json.loads(conn.recv_bytes())
print(f"  [python {who} {os.getpid()}] got {reply}")
conn.close()
