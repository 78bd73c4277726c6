"""pipc.Event / Barrier / Condition / RLock between separate Python processes:
the core assertions of CPython's _TestEvent, _TestBarrier and _TestCondition
(test/_test_multiprocessing.py), crash safety (SIGKILLed parties, owners and
waiters), and hostile files at the names."""
import errno
import os
import select
import signal
import stat
import subprocess
import sys
import threading
import time
import unittest

from _util import IPCTestCase, unique

import pipc
from pipc import _segment
from pipc._names import sync_path
from pipc._robust import RobustSegment

PY = sys.executable
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_peer.py")


class Peer:
    """A sync_peer.py child; lines are read with a timeout (select)."""

    def __init__(self, *args: str) -> None:
        self.p = subprocess.Popen([PY, PEER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._buf = b""

    @property
    def pid(self) -> int:
        return self.p.pid

    def line(self, timeout: float = 10.0) -> "str | None":
        """The next line, or None if none came within ``timeout`` seconds."""
        assert self.p.stdout is not None
        fd = self.p.stdout.fileno()
        end = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                if self._buf:
                    break
                err = self.p.stderr.read().decode() if self.p.stderr else ""
                raise AssertionError(f"peer exited ({self.p.wait()}) without a line: {err}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def expect(self, want: str, timeout: float = 10.0) -> None:
        got = self.line(timeout)
        if got != want:
            raise AssertionError(f"peer said {got!r}, not {want!r}")

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()

    def finish(self, timeout: float = 20.0) -> int:
        try:
            return self.p.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        self.kill()
        for f in (self.p.stdout, self.p.stderr):
            if f is not None:
                f.close()


class PeerCase(IPCTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.peers = []

    def tearDown(self) -> None:
        for p in self.peers:
            p.close()

    def peer(self, *args: str) -> Peer:
        p = Peer(*args)
        self.peers.append(p)
        return p


def poll(pred, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return bool(pred())


# --- Event ---------------------------------------------------------------------


class EventTests(PeerCase):
    def test_event_basics(self):
        # CPython _TestEvent.test_event
        n = unique("ev")
        with pipc.Event(n) as ev:
            try:
                self.assertFalse(ev.is_set())
                self.assertFalse(ev.wait(0))
                t0 = time.monotonic()
                self.assertFalse(ev.wait(0.2))
                self.assertGreaterEqual(time.monotonic() - t0, 0.19)
                ev.set()
                self.assertTrue(ev.is_set())
                self.assertTrue(ev.wait())
                self.assertTrue(ev.wait(0))
                ev.set()  # idempotent
                ev.clear()
                self.assertFalse(ev.is_set())
                self.assertFalse(ev.wait(0))
                with pipc.Event(n, create=False) as other:
                    other.set()
                    self.assertTrue(ev.is_set())
            finally:
                ev.unlink()

    def test_set_from_another_process_wakes_every_waiter(self):
        n = unique("evw")
        ev = pipc.Event(n)
        try:
            waiters = [self.peer("event-wait", n, "10") for _ in range(3)]
            for w in waiters:
                w.expect("ready")
            time.sleep(0.1)
            self.peer("event-set", n, "0").expect("set")
            for w in waiters:
                r, ms = w.line(2).split()
                self.assertEqual(r, "true")
                self.assertEqual(w.finish(), 0)
            self.assertTrue(ev.is_set())
        finally:
            ev.close()
            ev.unlink()

    def test_set_then_clear_is_not_missed(self):
        # A set never goes unseen, also if cleared again before the waiter runs.
        n = unique("evc")
        ev = pipc.Event(n)
        try:
            waiters = [self.peer("event-wait", n, "10") for _ in range(2)]
            for w in waiters:
                w.expect("ready")
            time.sleep(0.1)
            ev.set()
            ev.clear()
            for w in waiters:
                self.assertEqual(w.line(2).split()[0], "true")
            self.assertFalse(ev.is_set())
        finally:
            ev.close()
            ev.unlink()

    def test_ping_pong_3000_round_trips_none_lost_or_doubled(self):
        # Each side clears what it got and answers: a set seen twice (or one
        # lost) ends the exchange with a timeout. The state is one word, so a
        # set consumed and cleared cannot wake the next wait again.
        a, b = unique("pa"), unique("pb")
        A, B = pipc.Event(a), pipc.Event(b)
        try:
            p = self.peer("event-pong", a, b, "3000")
            p.expect("ready")
            ok = 0
            for _ in range(3000):
                A.set()
                if not B.wait(5):
                    break
                B.clear()
                ok += 1
            self.assertEqual(ok, 3000)
            self.assertEqual(p.line(10), "done 0")
            self.assertFalse(A.is_set() or B.is_set())
        finally:
            A.close()
            B.close()
            A.unlink()
            B.unlink()

    def test_wait_timeout_in_a_child(self):
        n = unique("evt")
        ev = pipc.Event(n)
        try:
            w = self.peer("event-wait", n, "0.3")
            w.expect("ready")
            r, ms = w.line(5).split()
            self.assertEqual(r, "false")
            self.assertGreaterEqual(int(ms), 290)
        finally:
            ev.close()
            ev.unlink()

    def test_threads_wait_on_one_handle(self):
        n = unique("evth")
        ev = pipc.Event(n)
        try:
            got = []
            ts = [threading.Thread(target=lambda: got.append(ev.wait(5))) for _ in range(4)]
            for t in ts:
                t.start()
            time.sleep(0.1)
            ev.set()
            for t in ts:
                t.join(5)
            self.assertEqual(got, [True] * 4)
        finally:
            ev.close()
            ev.unlink()

    def test_close_wakes_a_waiting_thread_with_ebadf(self):
        n = unique("evcl")
        ev = pipc.Event(n)
        errs = []

        def waiter():
            try:
                ev.wait(5)
            except OSError as e:
                errs.append(e.errno)

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.05)
        ev.close()
        t.join(2)
        self.assertFalse(t.is_alive())
        self.assertEqual(errs, [errno.EBADF])
        with self.assertRaises(OSError) as cm:
            ev.set()
        self.assertEqual(cm.exception.errno, errno.EBADF)
        pipc.Event.unlink(n)


# --- hostile files and bad arguments --------------------------------------------------


class HostileTests(IPCTestCase):
    def path(self, n: str, kind: str) -> str:
        return sync_path("/" + n, kind)

    def plant(self, path: str, data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)
        self.addCleanup(lambda: os.path.lexists(path) and os.unlink(path))

    def open_kind(self, kind: str, n: str, **kw):
        if kind == "event":
            return pipc.Event(n, **kw)
        if kind == "barrier":
            return pipc.Barrier(n, 2, **kw)
        if kind == "condition":
            return pipc.Condition(n, **kw)
        return pipc.RLock(n, **kw)

    def test_missing_and_exclusive(self):
        for kind in ("event", "barrier", "condition", "rlock"):
            with self.subTest(kind=kind):
                n = unique("miss")
                with self.assertRaises(FileNotFoundError) as cm:
                    self.open_kind(kind, n, create=False)
                self.assertIsInstance(cm.exception, pipc.IPCError)
                self.assertEqual(cm.exception.code, "ENOENT")
                h = self.open_kind(kind, n)
                try:
                    with self.assertRaises(FileExistsError):
                        self.open_kind(kind, n, exclusive=True)
                finally:
                    h.close()
                    type(h).unlink(n)
                with self.assertRaises(FileNotFoundError):
                    type(h).unlink(n)

    def test_wrong_size_garbage_symlink_dir_fifo(self):
        for kind in ("event", "barrier", "condition", "rlock"):
            with self.subTest(kind=kind):
                n = unique("bad")
                p = self.path(n, kind)
                self.plant(p, b"\0" * 100)
                with self.assertRaises(OSError) as cm:
                    self.open_kind(kind, n)
                self.assertEqual(cm.exception.errno, errno.EINVAL)
                os.unlink(p)
                if kind != "rlock":
                    self.plant(p, b"\xab" * _segment.SEGMENT_BYTES)
                    with self.assertRaises(OSError) as cm:
                        self.open_kind(kind, n)
                    self.assertEqual(cm.exception.errno, errno.EINVAL)
                    self.assertIn("no posix-ipc synchronisation header", str(cm.exception.strerror))
                    os.unlink(p)
                target = unique("target")
                os.symlink("/dev/shm/" + target, p)
                with self.assertRaises(OSError) as cm:
                    self.open_kind(kind, n)
                self.assertEqual(cm.exception.errno, errno.ELOOP)
                self.assertFalse(os.path.exists("/dev/shm/" + target), "followed the symlink")
                os.unlink(p)
                os.mkdir(p)
                try:
                    with self.assertRaises(OSError) as cm:
                        self.open_kind(kind, n)
                    self.assertEqual(cm.exception.errno, errno.EISDIR)
                finally:
                    os.rmdir(p)
                os.mkfifo(p)
                try:
                    t0 = time.monotonic()
                    with self.assertRaises(OSError) as cm:
                        self.open_kind(kind, n)
                    self.assertEqual(cm.exception.errno, errno.EINVAL)
                    self.assertLess(time.monotonic() - t0, 1)
                finally:
                    os.unlink(p)

    def test_another_kind_at_the_file_is_named(self):
        n = unique("kind")
        b = pipc.Barrier(n, 3)
        try:
            os.link(self.path(n, "barrier"), self.path(n, "event"))
            try:
                with self.assertRaises(OSError) as cm:
                    pipc.Event(n)
                self.assertEqual(cm.exception.errno, errno.EINVAL)
                self.assertIn("is a Barrier, not an Event", cm.exception.strerror)
            finally:
                os.unlink(self.path(n, "event"))
        finally:
            b.close()
            b.unlink()
        # an RLock's file holding a semaphore of another bound
        rob = RobustSegment("/" + n, self.path(n, "rlock"), True, True, 0o600, 2, 2)
        try:
            with self.assertRaises(OSError) as cm:
                pipc.RLock(n)
            self.assertEqual(cm.exception.errno, errno.EINVAL)
            self.assertIn("bounded at 2", cm.exception.strerror)
        finally:
            rob.close()
            os.unlink(self.path(n, "rlock"))

    def test_owner(self):
        for kind in ("event", "barrier", "condition", "rlock"):
            with self.subTest(kind=kind):
                n = unique("own")
                h = self.open_kind(kind, n)
                try:
                    other = os.geteuid() + 1
                    with self.assertRaises(PermissionError) as cm:
                        self.open_kind(kind, n, owner=other)
                    self.assertEqual(cm.exception.errno, errno.EPERM)
                    self.open_kind(kind, n, owner="any").close()
                    self.open_kind(kind, n, owner=os.geteuid()).close()
                finally:
                    h.close()
                    type(h).unlink(n)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to make a file owned by another uid")
    def test_another_owners_file_is_refused(self):
        for kind in ("event", "barrier", "condition", "rlock"):
            with self.subTest(kind=kind):
                n = unique("own2")
                h = self.open_kind(kind, n)
                h.close()
                os.chown(self.path(n, kind), 65534, 65534)
                if kind == "condition":  # and its RLock: owner= applies to both
                    os.chown(self.path(n, "rlock"), 65534, 65534)
                try:
                    with self.assertRaises(PermissionError) as cm:
                        self.open_kind(kind, n)
                    self.assertIn("owned by uid 65534", str(cm.exception))
                    self.open_kind(kind, n, owner=65534).close()
                    self.open_kind(kind, n, owner="any").close()
                finally:
                    type(h).unlink(n)

    def test_256_handles_then_enospc(self):
        n = unique("full")
        hs = [pipc.Event(n)]
        try:
            for _ in range(255):
                hs.append(pipc.Event(n, create=False))
            self.assertEqual(sorted(h._seg.slot for h in hs), list(range(1, 257)))
            with self.assertRaises(OSError) as cm:
                pipc.Event(n, create=False)
            self.assertEqual(cm.exception.errno, errno.ENOSPC)
            hs.pop().close()  # a slot comes back at once
            hs.append(pipc.Event(n, create=False))
        finally:
            for h in hs:
                h.close()
            pipc.Event.unlink(n)

    def test_mode(self):
        n = unique("mode")
        old = os.umask(0)
        try:
            ev = pipc.Event(n, mode=0o640)
        finally:
            os.umask(old)
        try:
            self.assertEqual(stat.S_IMODE(os.stat(self.path(n, "event")).st_mode), 0o640)
        finally:
            ev.close()
            ev.unlink()
        ev = pipc.Event(n)
        try:
            self.assertEqual(stat.S_IMODE(os.stat(self.path(n, "event")).st_mode) & 0o077, 0)
        finally:
            ev.close()
            ev.unlink()

    def test_bad_arguments(self):
        with self.assertRaises(TypeError):
            pipc.Event(3)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            pipc.Event("a/b")
        with self.assertRaises(ValueError):
            pipc.Event("x" * 243)  # 255 - len("pipc.") - len(".barrier") = 242
        with self.assertRaises(ValueError):
            pipc.Event(unique("m"), mode=0o1000)
        with self.assertRaises(TypeError):
            pipc.Event(unique("c"), create=1)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            pipc.Barrier(unique("p"), 0)
        with self.assertRaises(ValueError):
            pipc.Barrier(unique("p"), 257)
        with self.assertRaises(TypeError):
            pipc.Barrier(unique("p"))  # parties required to create
        with self.assertRaises(TypeError):
            pipc.Condition(unique("l"), lock=threading.Lock())  # type: ignore[arg-type]
        n = unique("ev")
        with pipc.Event(n) as ev:
            with self.assertRaises(ValueError):
                ev.wait(-1)
            with self.assertRaises(TypeError):
                ev.wait("1")  # type: ignore[arg-type]
            ev.unlink()
        self.assertEqual(ev.closed, True)


# --- Barrier ---------------------------------------------------------------------


class BarrierTests(PeerCase):
    N = 5

    def test_rounds_indices_unique_action_once(self):
        # CPython _TestBarrier.test_barrier / test_action, between N processes.
        n = unique("bar")
        rounds = 20
        kids = [self.peer("barrier-rounds", n, str(self.N), str(rounds)) for _ in range(self.N)]
        for k in kids:
            k.expect("ready")
        per_round = [[] for _ in range(rounds)]
        actions = 0
        for k in kids:
            word, idx, act = k.line(60).split()
            self.assertEqual(word, "done")
            for r, i in enumerate(idx.split(",")):
                per_round[r].append(int(i))
            actions += int(act)
            self.assertEqual(k.finish(), 0)
        for r in range(rounds):
            self.assertEqual(sorted(per_round[r]), list(range(self.N)), f"round {r}")
        self.assertEqual(actions, rounds)
        pipc.Barrier.unlink(n)

    def test_abort_then_reset(self):
        # CPython test_abort / test_reset
        n = unique("abort")
        b = pipc.Barrier(n, self.N)
        try:
            kids = [self.peer("barrier-wait", n, "10") for _ in range(self.N - 2)]
            for k in kids:
                k.expect("ready")
            self.assertTrue(poll(lambda: b.n_waiting == self.N - 2))
            b.abort()
            for k in kids:
                self.assertEqual(k.line(2).split()[0], "broken")
            self.assertTrue(b.broken)
            self.assertEqual(b.n_waiting, 0)
            with self.assertRaises(pipc.BrokenBarrierError):
                b.wait(1)
            with self.assertRaises(threading.BrokenBarrierError):
                b.wait(1)
            b.reset()
            self.assertFalse(b.broken)
            kids = [self.peer("barrier-wait", n, "10") for _ in range(self.N - 1)]
            for k in kids:
                k.expect("ready")
            i = b.wait(10)
            got = sorted([i] + [int(k.line(5).split()[1]) for k in kids])
            self.assertEqual(got, list(range(self.N)))
        finally:
            b.close()
            b.unlink()

    def test_reset_breaks_the_waiting_round_only(self):
        n = unique("reset")
        b = pipc.Barrier(n, 3)
        try:
            k = self.peer("barrier-wait", n, "10")
            k.expect("ready")
            self.assertTrue(poll(lambda: b.n_waiting == 1))
            self.peer("barrier-reset", n).expect("done")
            self.assertEqual(k.line(2).split()[0], "broken")
            self.assertFalse(b.broken)
            self.assertEqual(b.n_waiting, 0)
            kids = [self.peer("barrier-wait", n, "10") for _ in range(2)]
            for k in kids:
                k.expect("ready")
            self.assertIn(b.wait(10), (0, 1, 2))
            for k in kids:
                self.assertEqual(k.line(5).split()[0], "index")
        finally:
            b.close()
            b.unlink()

    def test_timeout_breaks(self):
        # CPython test_timeout / test_default_timeout
        n = unique("bto")
        b = pipc.Barrier(n, 2)
        try:
            t0 = time.monotonic()
            with self.assertRaises(pipc.BrokenBarrierError):
                b.wait(0.2)
            self.assertGreaterEqual(time.monotonic() - t0, 0.19)
            self.assertTrue(b.broken)
            b.reset()
        finally:
            b.close()
            b.unlink()
        b = pipc.Barrier(n, 2, timeout=0.2)
        try:
            t0 = time.monotonic()
            with self.assertRaises(pipc.BrokenBarrierError):
                b.wait()
            self.assertGreaterEqual(time.monotonic() - t0, 0.19)
            self.assertTrue(b.broken)
        finally:
            b.close()
            b.unlink()

    def test_action_raises_breaks(self):
        n = unique("bact")

        def boom():
            raise ValueError("boom")

        b = pipc.Barrier(n, 1, action=boom)
        try:
            with self.assertRaises(ValueError):
                b.wait()
            self.assertTrue(b.broken)
        finally:
            b.close()
            b.unlink()

    def test_sigkilled_party_breaks_within_1s(self):
        n = unique("bdie2")
        b = pipc.Barrier(n, 4)
        try:
            victim = self.peer("barrier-wait", n, "-1")
            victim.expect("ready")
            other = self.peer("barrier-wait", n, "-1")
            other.expect("ready")
            self.assertTrue(poll(lambda: b.n_waiting == 2))
            out = []

            def mine2():
                try:
                    out.append(("index", b.wait(10)))
                except pipc.BrokenBarrierError:
                    out.append(("broken", time.monotonic()))

            t = threading.Thread(target=mine2)
            t.start()
            self.assertTrue(poll(lambda: b.n_waiting == 3))
            t0 = time.monotonic()
            os.kill(victim.pid, signal.SIGKILL)
            victim.p.wait()
            t.join(5)
            self.assertEqual(out[0][0], "broken")
            self.assertLess(out[0][1] - t0, 1.0)
            self.assertEqual(other.line(2).split()[0], "broken")
            self.assertTrue(b.broken)
        finally:
            b.close()
            b.unlink()

    def test_closing_a_waiting_handle_breaks_it_for_the_others(self):
        n = unique("bclose")
        b = pipc.Barrier(n, 3)
        try:
            k = self.peer("barrier-wait", n, "10")
            k.expect("ready")
            errs = []

            def mine():
                try:
                    b.wait(10)
                except OSError as e:
                    errs.append(e.errno)

            t = threading.Thread(target=mine)
            t.start()
            self.assertTrue(poll(lambda: b.n_waiting == 2))
            t0 = time.monotonic()
            b.close()
            t.join(2)
            self.assertEqual(errs, [errno.EBADF])
            word, ms = k.line(3).split()
            self.assertEqual(word, "broken")
            self.assertLess(time.monotonic() - t0, 1.5)
        finally:
            b.close()
            pipc.Barrier.unlink(n)

    def test_parties_mismatch_and_open_existing(self):
        n = unique("bpm")
        b = pipc.Barrier(n, 3)
        try:
            with self.assertRaises(OSError) as cm:
                pipc.Barrier(n, 4)
            self.assertEqual(cm.exception.errno, errno.EINVAL)
            self.assertIn("3 parties, not 4", cm.exception.strerror)
            with pipc.Barrier(n) as again:
                self.assertEqual(again.parties, 3)
        finally:
            b.close()
            b.unlink()

    def test_own_slot_left_in_the_lock_word_is_taken_over(self):
        # A previous owner of the slot we claim died holding the internal lock:
        # nobody else can take it over (the slot is alive: ours), so the opener does.
        n = unique("bslot")
        a = pipc.Barrier(n, 2)  # claims slot pid % 256 + 1
        nxt = (os.getpid() % 256 + 1) % 256 + 1  # the slot the next handle claims
        path = sync_path("/" + n, "barrier")
        try:
            with open(path, "r+b") as f:
                f.seek(24)
                f.write(nxt.to_bytes(4, "little"))
            b = pipc.Barrier(n, 2)
            try:
                with open(path, "rb") as f:
                    data = f.read()
                self.assertEqual(int.from_bytes(data[256 + 64 * (nxt - 1):][:4], "little"), os.getpid())
                self.assertEqual(int.from_bytes(data[24:28], "little"), 0)
                self.assertTrue(b.broken)
                a.reset()  # would spin forever on the lock word without the take-over
                self.assertFalse(b.broken)
            finally:
                b.close()
        finally:
            a.close()
            a.unlink()

    def test_threads_of_one_handle_are_parties(self):
        # As threading.Barrier: threads share the object; each wait is a party.
        n = unique("bthr")
        b = pipc.Barrier(n, 4)
        try:
            got = []
            ts = [threading.Thread(target=lambda: got.append(b.wait(10))) for _ in range(3)]
            for t in ts:
                t.start()
            self.assertTrue(poll(lambda: b.n_waiting == 3))
            k = self.peer("barrier-wait", n, "10")
            k.expect("ready")
            for t in ts:
                t.join(10)
            word, i, _ = k.line(5).split()
            self.assertEqual(word, "index")
            self.assertEqual(sorted(got + [int(i)]), [0, 1, 2, 3])
            # a thread's extra slot is given back: 3 more threads, 1 round, no slot leak
            got.clear()
            ts = [threading.Thread(target=lambda: got.append(b.wait(10))) for _ in range(4)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(10)
            self.assertEqual(sorted(got), [0, 1, 2, 3])
            self.assertEqual(b._seg._held, {b._seg.slot})
        finally:
            b.close()
            b.unlink()

    def test_a_dead_thread_party_slot_is_not_taken_for_dead(self):
        # The handle's own extra slots look unlocked to F_OFD_GETLK through the
        # same descriptor: they must count as alive (no false break).
        n = unique("bthr2")
        b = pipc.Barrier(n, 3)
        try:
            errs = []

            def party():
                try:
                    b.wait(1.0)
                except pipc.BrokenBarrierError:
                    errs.append("broken")

            ts = [threading.Thread(target=party) for _ in range(2)]
            for t in ts:
                t.start()
            time.sleep(0.7)  # past two dead-party scans
            self.assertFalse(b.broken)
            self.assertEqual(b.n_waiting, 2)
            for t in ts:
                t.join(5)
            self.assertEqual(errs, ["broken", "broken"])  # the timeout broke it, not a scan
        finally:
            b.close()
            b.unlink()


# --- Condition ---------------------------------------------------------------------


class ConditionTests(PeerCase):
    def waiters(self, c: pipc.Condition, n: str, k: int, secs: str = "-1"):
        ws = []
        for _ in range(k):
            w = self.peer("cond-wait", n, secs)
            w.expect("ready")
            ws.append(w)
        self.assertTrue(poll(lambda: c.n_waiting == k), f"{c.n_waiting} waiting, not {k}")
        return ws

    def woke(self, ws, timeout: float):
        """The waiters that said "woke" within ``timeout``."""
        end = time.monotonic() + timeout
        got = []
        for w in ws:
            line = w.line(max(0.0, end - time.monotonic()))
            if line is not None:
                self.assertEqual(line.split()[:3], ["woke", "true", "true"])
                got.append(w)
        return got

    def test_notify_wakes_exactly_one(self):
        # CPython _TestCondition.test_notify
        n = unique("cn")
        c = pipc.Condition(n)
        try:
            ws = self.waiters(c, n, 2)
            with c:
                self.assertEqual(c.notify(), 1)
            first = self.woke(ws, 1.0)
            self.assertEqual(len(first), 1)
            self.assertIs(first[0], ws[0])  # oldest first
            self.assertEqual(self.woke(ws[1:], 0.5), [])
            with c:
                self.assertEqual(c.notify(), 1)
            self.assertEqual(len(self.woke(ws[1:], 2)), 1)
            with c:
                self.assertEqual(c.notify(), 0)
        finally:
            c.close()
            c.unlink()

    def test_notify_all(self):
        n = unique("cna")
        c = pipc.Condition(n)
        try:
            ws = self.waiters(c, n, 4)
            with c:
                self.assertEqual(c.notify_all(), 4)
            self.assertEqual(len(self.woke(ws, 3)), 4)
            self.assertEqual(c.n_waiting, 0)
        finally:
            c.close()
            c.unlink()

    def test_notify_n(self):
        n = unique("cnn")
        c = pipc.Condition(n)
        try:
            ws = self.waiters(c, n, 5)
            with c:
                self.assertEqual(c.notify(2), 2)
            first = self.woke(ws, 1.0)
            self.assertEqual(first, ws[:2])
            with c:
                self.assertEqual(c.notify(3), 3)
            self.assertEqual(self.woke(ws[2:], 3), ws[2:])
        finally:
            c.close()
            c.unlink()

    def test_wait_timeout_keeps_depth(self):
        # CPython test_timeout: a wait that times out returns False, with the lock held again.
        n = unique("cto")
        c = pipc.Condition(n)
        try:
            c.acquire()
            c.acquire()
            t0 = time.monotonic()
            self.assertFalse(c.wait(0.2))
            self.assertGreaterEqual(time.monotonic() - t0, 0.19)
            self.assertEqual(c.lock.count, 2)
            c.release()
            c.release()
            self.assertFalse(c.lock.locked())
            w = self.peer("cond-wait", n, "0.3")
            w.expect("ready")
            parts = w.line(5).split()
            self.assertEqual(parts[:3], ["woke", "false", "true"])
            self.assertGreaterEqual(int(parts[3]), 290)
        finally:
            c.close()
            c.unlink()

    def test_wait_releases_the_lock_for_others(self):
        n = unique("crel")
        c = pipc.Condition(n)
        try:
            ws = self.waiters(c, n, 1)
            self.assertTrue(c.acquire(timeout=2))  # the waiter gave it up
            self.assertEqual(c.notify(), 1)
            self.assertIsNone(ws[0].line(0.3))  # it needs the lock back first
            c.release()
            self.assertEqual(len(self.woke(ws, 2)), 1)
        finally:
            c.close()
            c.unlink()

    def test_wait_for(self):
        # CPython test_waitfor / test_waitfor_timeout
        n = unique("cwf")
        c = pipc.Condition(n)
        path = f"/tmp/{n}"
        with open(path, "w") as f:
            f.write("0")
        try:
            w = self.peer("cond-waitfor", n, path, "3", "10")
            w.expect("ready")
            for v in range(1, 4):
                time.sleep(0.05)
                with c:
                    with open(path, "w") as f:
                        f.write(str(v))
                    c.notify_all()
            self.assertEqual(w.line(5).split()[0], "true")
            with c:
                t0 = time.monotonic()
                self.assertFalse(c.wait_for(lambda: False, 0.2))
                self.assertGreaterEqual(time.monotonic() - t0, 0.19)
                self.assertEqual(c.wait_for(lambda: 7), 7)
            w2 = self.peer("cond-waitfor", n, path, "9", "0.3")
            w2.expect("ready")
            self.assertEqual(w2.line(5).split()[0], "false")
        finally:
            os.unlink(path)
            c.close()
            c.unlink()

    def test_unacquired_is_runtime_error(self):
        n = unique("cun")
        c = pipc.Condition(n)
        try:
            self.assertRaises(RuntimeError, c.wait)
            self.assertRaises(RuntimeError, c.notify)
            self.assertRaises(RuntimeError, c.notify_all)
            held = threading.Event()
            done = threading.Event()

            def holder():
                with c:
                    held.set()
                    done.wait(5)

            t = threading.Thread(target=holder)
            t.start()
            held.wait(5)
            self.assertRaises(RuntimeError, c.wait, 0.01)  # another thread owns the RLock
            self.assertRaises(RuntimeError, c.notify)
            done.set()
            t.join()
        finally:
            c.close()
            c.unlink()

    def test_sigkilled_waiter_is_skipped(self):
        n = unique("cdie")
        c = pipc.Condition(n)
        try:
            ws = self.waiters(c, n, 2)
            ws[0].kill()  # the oldest waiter dies
            self.assertTrue(poll(lambda: c.n_waiting == 1))
            with c:
                self.assertEqual(c.notify(), 1)
            self.assertEqual(len(self.woke(ws[1:], 2)), 1)
        finally:
            c.close()
            c.unlink()

    def test_threads_of_one_handle(self):
        # As threading.Condition: threads share the object; notify wakes exactly one.
        n = unique("cthr")
        c = pipc.Condition(n)
        try:
            woke = []

            def waiter(k):
                with c:
                    if c.wait(10):
                        woke.append(k)

            ts = [threading.Thread(target=waiter, args=(k,)) for k in range(3)]
            for t in ts:
                t.start()
                self.assertTrue(poll(lambda: c.n_waiting == ts.index(t) + 1))
            with c:
                self.assertEqual(c.notify(), 1)
            self.assertTrue(poll(lambda: len(woke) == 1))
            time.sleep(0.2)
            self.assertEqual(woke, [0])
            self.assertEqual(c.n_waiting, 2)
            w = self.peer("cond-notify", n, "all")
            self.assertEqual(w.line(5), "notified 2")
            for t in ts:
                t.join(5)
            self.assertEqual(sorted(woke), [0, 1, 2])
            self.assertEqual(c._seg._held, {c._seg.slot})
        finally:
            c.close()
            c.unlink()

    def test_with_a_lock(self):
        n = unique("clk")
        lk = pipc.Lock(n)
        c = pipc.Condition(n, lk)
        try:
            with c:
                self.assertFalse(c.wait(0.05))
                self.assertTrue(lk.locked())
            self.assertFalse(lk.locked())
        finally:
            c.close()
            c.unlink()
            lk.close()
            lk.unlink()


# --- RLock ------------------------------------------------------------------------------


class RLockTests(PeerCase):
    def test_reentrant_and_owner(self):
        n = unique("rl")
        r = pipc.RLock(n)
        try:
            self.assertTrue(r.acquire())
            self.assertTrue(r.acquire(False))
            with r:
                self.assertEqual(r.count, 3)
            self.assertEqual(r.count, 2)
            other = []

            def thread():
                other.append(r.acquire(False))
                try:
                    r.release()
                except RuntimeError:
                    other.append("RuntimeError")

            t = threading.Thread(target=thread)
            t.start()
            t.join()
            self.assertEqual(other, [False, "RuntimeError"])
            p = self.peer("rlock-probe", n)
            self.assertEqual(p.line(5), "RuntimeError false true")
            r.release()
            r.release()
            self.assertFalse(r.locked())
            self.assertRaises(RuntimeError, r.release)
            p = self.peer("rlock-probe", n)
            self.assertEqual(p.line(5), "RuntimeError true true")
            self.assertFalse(r.locked())
        finally:
            r.close()
            r.unlink()

    def test_timeout(self):
        n = unique("rlt")
        r = pipc.RLock(n)
        try:
            h = self.peer("rlock-hold", n, "2")
            self.assertEqual(h.line(5), "held 2")
            t0 = time.monotonic()
            self.assertFalse(r.acquire(timeout=0.2))
            self.assertGreaterEqual(time.monotonic() - t0, 0.19)
            self.assertFalse(r.acquire(False))
        finally:
            r.close()
            r.unlink()

    def test_dead_owner_gives_it_back(self):
        n = unique("rld")
        r = pipc.RLock(n)
        try:
            h = self.peer("rlock-hold", n, "3")
            self.assertEqual(h.line(5), "held 3")
            self.assertTrue(r.locked())
            got = []
            t = threading.Thread(target=lambda: got.append(r.acquire(timeout=5)))
            t.start()
            time.sleep(0.1)
            t0 = time.monotonic()
            h.kill()
            t.join(5)
            self.assertEqual(got, [True])
            self.assertLess(time.monotonic() - t0, 1.0)
            # The owner is the thread that acquired; the recovered mark tells who died.
            self.assertEqual(r.recovered.pid, h.pid)
            self.assertTrue(r.locked())
        finally:
            r.close()  # the thread's ownership goes with the handle
            r.unlink()

    def test_exclusion_counter(self):
        n = unique("rlx")
        r = pipc.RLock(n)
        path = f"/tmp/{n}"
        with open(path, "w") as f:
            f.write("0")
        try:
            kids = [self.peer("rlock-count", n, path, "100") for _ in range(3)]
            for k in kids:
                k.expect("ready")
            for _ in range(100):
                with r:
                    with open(path, "r+") as f:
                        v = int(f.read())
                        os.sched_yield()
                        f.seek(0)
                        f.write(str(v + 1))
                        f.truncate()
            for k in kids:
                k.expect("done", 30)
            with open(path) as f:
                self.assertEqual(int(f.read()), 400)
        finally:
            os.unlink(path)
            r.close()
            r.unlink()


if __name__ == "__main__":
    unittest.main()
