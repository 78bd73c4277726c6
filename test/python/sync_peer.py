"""Python peer of the Event/Barrier/Condition/RLock tests (test_sync.py and the
cross-language python-sync11.test.ts), built on pipc. One line per step on
stdout (flushed), so a parent can wait for "ready".

    sync_peer.py make KIND NAME [PARTIES]        create (exclusive) an Event/Barrier/Condition/RLock, leave it; "made"
    sync_peer.py event-wait NAME SECS            ready; wait (SECS < 0: forever); "<bool> <ms>"
    sync_peer.py event-pong A B N                ready; N times: wait A (5 s), clear A, set B; "done <timeouts>"
    sync_peer.py event-set NAME DELAY            sleep DELAY s, set, "set"
    sync_peer.py barrier-rounds NAME PARTIES ROUNDS   ready; ROUNDS waits; "done i,i,... <actions run here>"
    sync_peer.py barrier-wait NAME SECS          ready; one wait; "index <i> <ms>" or "broken <ms>"
    sync_peer.py barrier-threads NAME K          ready; K threads wait once on one handle; "indices i,j,..."
    sync_peer.py barrier-abort NAME | barrier-reset NAME
    sync_peer.py rlock-hold NAME DEPTH           acquire DEPTH times, "held <count>", keep it until killed
    sync_peer.py rlock-acquire NAME SECS         JSON {ok, recovered, ms}
    sync_peer.py rlock-probe NAME                "<release outcome> <acquire(False)> <locked()>"
    sync_peer.py rlock-count NAME FILE N         N times, under the lock (entered twice): FILE += 1
    sync_peer.py rlock-chaos NAME FILE           forever: under the RLock (entered twice), append last value + 1 to FILE
    sync_peer.py cond-wait NAME SECS             hold the lock, ready, wait; "woke <bool> <owned> <ms>"
    sync_peer.py cond-waitfor NAME FILE VALUE SECS   ready; wait_for(FILE holds VALUE); "<bool> <ms>"
    sync_peer.py cond-notify NAME N|all          under the lock: "notified <k>"
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

import pipc  # noqa: E402


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def secs(s: str):
    v = float(s)
    return None if v < 0 else v


def ms(t0: float) -> int:
    return round((time.monotonic() - t0) * 1e3)


def bump(path: str) -> None:
    with open(path, "r+") as f:
        v = int(f.read() or "0")
        os.sched_yield()
        f.seek(0)
        f.write(str(v + 1))
        f.truncate()


def main() -> None:
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        kind, name = a[0], a[1]
        if kind == "barrier":
            h = pipc.Barrier(name, int(a[2]), exclusive=True)
        else:
            h = {"event": pipc.Event, "condition": pipc.Condition, "rlock": pipc.RLock}[kind](name, exclusive=True)
        h.close()
        out("made")
    elif cmd == "event-wait":
        ev = pipc.Event(a[0], create=False)
        out("ready")
        t0 = time.monotonic()
        r = ev.wait(secs(a[1]))
        out(f"{str(r).lower()} {ms(t0)}")
        ev.close()
    elif cmd == "event-pong":
        A = pipc.Event(a[0], create=False)
        B = pipc.Event(a[1], create=False)
        out("ready")
        missed = 0
        for _ in range(int(a[2])):
            if not A.wait(5):
                missed += 1
                break
            A.clear()
            B.set()
        out(f"done {missed}")
        A.close()
        B.close()
    elif cmd == "event-set":
        ev = pipc.Event(a[0], create=False)
        time.sleep(float(a[1]))
        ev.set()
        out("set")
        ev.close()
    elif cmd == "barrier-rounds":
        actions = [0]

        def action() -> None:
            actions[0] += 1

        b = pipc.Barrier(a[0], int(a[1]), action=action)
        out("ready")
        idx = [b.wait(30) for _ in range(int(a[2]))]
        out(f"done {','.join(map(str, idx))} {actions[0]}")
        b.close()
    elif cmd == "barrier-wait":
        b = pipc.Barrier(a[0], create=False)
        out("ready")
        t0 = time.monotonic()
        try:
            i = b.wait(secs(a[1]))
            out(f"index {i} {ms(t0)}")
        except pipc.BrokenBarrierError:
            out(f"broken {ms(t0)}")
        b.close()
    elif cmd == "barrier-threads":
        import threading

        b = pipc.Barrier(a[0], create=False)
        got = []
        ts = [threading.Thread(target=lambda: got.append(b.wait(10))) for _ in range(int(a[1]))]
        out("ready")
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        out("indices " + ",".join(map(str, sorted(got))))
        b.close()
    elif cmd in ("barrier-abort", "barrier-reset"):
        b = pipc.Barrier(a[0], create=False)
        b.abort() if cmd == "barrier-abort" else b.reset()
        out("done")
        b.close()
    elif cmd == "rlock-hold":
        r = pipc.RLock(a[0], create=False)
        for _ in range(int(a[1])):
            r.acquire()
        out(f"held {r.count}")
        while True:
            time.sleep(1)
    elif cmd == "rlock-acquire":
        r = pipc.RLock(a[0], create=False)
        t0 = time.monotonic()
        ok = r.acquire(timeout=float(a[1]))
        took = ms(t0)
        rec = r.recovered
        if ok:
            r.release()
        r.close()
        out(json.dumps({"ok": ok, "recovered": rec.pid if rec else None, "ms": took}))
    elif cmd == "rlock-probe":
        r = pipc.RLock(a[0], create=False)
        try:
            r.release()
            rel = "released"
        except RuntimeError:
            rel = "RuntimeError"
        got = r.acquire(False)
        locked = r.locked()
        if got:
            r.release()
        r.close()
        out(f"{rel} {str(got).lower()} {str(locked).lower()}")
    elif cmd == "rlock-count":
        r = pipc.RLock(a[0], create=False)
        out("ready")
        for _ in range(int(a[2])):
            with r:
                with r:
                    bump(a[1])
        out("done")
        r.close()
    elif cmd == "rlock-chaos":
        r = pipc.RLock(a[0], create=False)
        fd = os.open(a[1], os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        width = 12
        out("ready")
        while True:
            with r:
                with r:
                    size = os.fstat(fd).st_size
                    last = int(os.pread(fd, width, size - width).decode("latin1").strip()) if size >= width else 0
                    # one write: a death leaves the line whole or absent
                    os.write(fd, (str(last + 1).rjust(width - 1) + "\n").encode())
    elif cmd == "cond-wait":
        c = pipc.Condition(a[0], create=False)
        c.acquire()
        out("ready")
        t0 = time.monotonic()
        r = c.wait(secs(a[1]))
        out(f"woke {str(r).lower()} {str(c.lock._is_owned()).lower()} {ms(t0)}")
        c.release()
        c.close()
    elif cmd == "cond-waitfor":
        name, path, value, t = a
        c = pipc.Condition(name, create=False)
        with c:
            out("ready")
            t0 = time.monotonic()

            def holds() -> bool:
                with open(path) as f:
                    return f.read() == value

            r = c.wait_for(holds, secs(t))
            out(f"{str(r).lower()} {ms(t0)}")
        c.close()
    elif cmd == "cond-notify":
        c = pipc.Condition(a[0], create=False)
        with c:
            k = c.notify_all() if a[1] == "all" else c.notify(int(a[1]))
        out(f"notified {k}")
        c.close()
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
