// Peer of bench/event.bench.mjs: the same Event ping-pong in C, two futex
// words in a shared mapping between a parent and a forked child:
// set = store 1 + FUTEX_WAKE, wait = FUTEX_WAIT while 0, clear = store 0.
// Prints the median and p99 round trip in ns.
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void set(int *w) {
  __atomic_store_n(w, 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, w, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
}
static void wait1(int *w) {
  while (__atomic_load_n(w, __ATOMIC_SEQ_CST) == 0)
    syscall(SYS_futex, w, FUTEX_WAIT, 0, NULL, NULL, 0);
}
static int64_t now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static int cmp(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  int *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                -1, 0);
  int *a = w, *b = w + 16;
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < n; i++) {
      wait1(a);
      __atomic_store_n(a, 0, __ATOMIC_SEQ_CST);
      set(b);
    }
    _exit(0);
  }
  int64_t *rtt = malloc(sizeof(int64_t) * n);
  for (int i = 0; i < n; i++) {
    int64_t t0 = now();
    set(a);
    wait1(b);
    __atomic_store_n(b, 0, __ATOMIC_SEQ_CST);
    rtt[i] = now() - t0;
  }
  waitpid(pid, NULL, 0);
  qsort(rtt, n, sizeof *rtt, cmp);
  printf("%lld %lld\n", (long long)rtt[n / 2], (long long)rtt[(int)(n * 0.99)]);
  return 0;
}
