# Peer of bench/event.bench.mjs: the Event ping-pong and Barrier rounds through
# the pipc Python module (python/pipc), Python <-> Python and as the Python
# side of Node <-> Python.
#   event_pipc.py event N                     Python ping, Python pong: prints p50 p99 (ns)
#   event_pipc.py pong A B N                  answers each set of Event A by setting B
#   event_pipc.py barrier PARTIES ROUNDS      PARTIES Python processes: prints ns per round
#   event_pipc.py party NAME PARTIES ROUNDS   one party: ROUNDS + 1 waits
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import pipc  # noqa: E402

HERE = os.path.abspath(__file__)


def pong(a: str, b: str, n: int) -> None:
    A = pipc.Event(a, create=False)
    B = pipc.Event(b, create=False)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for _ in range(n):
        A.wait()
        A.clear()
        B.set()
    A.close()
    B.close()


def party(name: str, parties: int, rounds: int) -> None:
    bar = pipc.Barrier(name, parties)
    for _ in range(rounds + 1):
        bar.wait()
    bar.close()


def main() -> None:
    cmd = sys.argv[1]
    tag = f"pipc-bench-py-{os.getpid()}"
    if cmd == "pong":
        pong(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "party":
        party(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "event":
        n = int(sys.argv[2])
        a, b = f"{tag}-a", f"{tag}-b"
        A, B = pipc.Event(a), pipc.Event(b)
        p = subprocess.Popen([sys.executable, HERE, "pong", a, b, str(n)], stdout=subprocess.PIPE)
        assert p.stdout is not None
        p.stdout.readline()
        rtt = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            A.set()
            B.wait()
            B.clear()
            rtt.append(time.perf_counter_ns() - t0)
        p.wait()
        A.close()
        B.close()
        A.unlink()
        B.unlink()
        rtt.sort()
        print(rtt[n // 2], rtt[int(n * 0.99)])
    else:
        parties, rounds = int(sys.argv[2]), int(sys.argv[3])
        name = f"{tag}-bar"
        bar = pipc.Barrier(name, parties)
        ps = [subprocess.Popen([sys.executable, HERE, "party", name, str(parties), str(rounds)]) for _ in range(parties - 1)]
        bar.wait()
        t0 = time.perf_counter_ns()
        for _ in range(rounds):
            bar.wait()
        print((time.perf_counter_ns() - t0) / rounds)
        for p in ps:
            p.wait()
        bar.close()
        bar.unlink()


if __name__ == "__main__":
    main()
