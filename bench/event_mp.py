# Peer of bench/event.bench.mjs: the Event ping-pong and Barrier rounds with
# Python's multiprocessing (fork). Usage: event_mp.py event N | barrier PARTIES ROUNDS
import multiprocessing as mp
import sys
import time


def pong(a, b, n):
    for _ in range(n):
        a.wait()
        a.clear()
        b.set()


def party(bar, rounds):
    for _ in range(rounds + 1):
        bar.wait()


def main():
    ctx = mp.get_context('fork')
    if sys.argv[1] == 'event':
        n = int(sys.argv[2])
        a, b = ctx.Event(), ctx.Event()
        p = ctx.Process(target=pong, args=(a, b, n))
        p.start()
        rtt = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            a.set()
            b.wait()
            b.clear()
            rtt.append(time.perf_counter_ns() - t0)
        p.join()
        rtt.sort()
        print(rtt[n // 2], rtt[int(n * 0.99)])
    else:
        parties, rounds = int(sys.argv[2]), int(sys.argv[3])
        bar = ctx.Barrier(parties)
        ps = [ctx.Process(target=party, args=(bar, rounds)) for _ in range(parties - 1)]
        for p in ps:
            p.start()
        bar.wait()
        t0 = time.perf_counter_ns()
        for _ in range(rounds):
            bar.wait()
        print((time.perf_counter_ns() - t0) / rounds)
        for p in ps:
            p.join()


if __name__ == '__main__':
    main()
