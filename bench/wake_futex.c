// The machine's own floor for bench/wakeup.bench.mjs: the wake-up latency of a
// process blocked on a futex word in shared memory, released by another
// process, paced exactly as the Node benchmark paces its samples (the waiter
// names the next sample over a pipe, the releaser reads the clock, wakes the
// word and writes the time back), so both processes sit idle between samples
// as the Node ones do.
//
//   wake_futex <samples> direct   one thread blocked in FUTEX_WAIT (one hop)
//   wake_futex <samples> loop     a thread blocked in FUTEX_WAIT hands the
//                                 wake-up to a main thread sleeping in
//                                 epoll_wait through an eventfd: the shape of
//                                 the engine (a wait thread, then the event
//                                 loop), two hops
//
// Prints "median_us p99_us" over the samples (CLOCK_MONOTONIC in both).
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long futex(int32_t* w, int op, int32_t v) {
  return syscall(SYS_futex, w, op, v, NULL, NULL, 0);
}

static int32_t* word;  // shared: the release counter
static int efd;

static void* waiter_thread(void* arg) {
  (void)arg;
  int32_t seen = 0;
  for (;;) {
    while (__atomic_load_n(word, __ATOMIC_SEQ_CST) == seen)
      futex(word, FUTEX_WAIT, seen);
    seen = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    if (seen < 0) return NULL;
    uint64_t one = 1;
    if (write(efd, &one, sizeof one) != sizeof one) abort();
  }
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: wake_futex <samples> direct|loop\n");
    return 2;
  }
  int samples = atoi(argv[1]);
  int loop = strcmp(argv[2], "loop") == 0;
  word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
              -1, 0);
  if (word == MAP_FAILED) return 1;
  int to_rel[2], from_rel[2];
  if (pipe(to_rel) || pipe(from_rel)) return 1;
  pid_t pid = fork();
  if (pid == 0) {  // releaser
    char c;
    while (read(to_rel[0], &c, 1) == 1 && c == 'r') {
      int64_t t0 = now_ns();
      __atomic_add_fetch(word, 1, __ATOMIC_SEQ_CST);
      futex(word, FUTEX_WAKE, 1);
      if (write(from_rel[1], &t0, sizeof t0) != sizeof t0) _exit(1);
    }
    _exit(0);
  }
  double* lat = calloc(samples, sizeof *lat);
  pthread_t th;
  int ep = -1;
  if (loop) {
    efd = eventfd(0, EFD_NONBLOCK);
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = efd};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    pthread_create(&th, NULL, waiter_thread, NULL);
  }
  int32_t seen = 0;
  for (int k = 0; k < samples; k++) {
    if (write(to_rel[1], "r", 1) != 1) return 1;
    int64_t t1;
    if (loop) {
      struct epoll_event ev;
      while (epoll_wait(ep, &ev, 1, -1) != 1) {}
      uint64_t v;
      if (read(efd, &v, sizeof v) != sizeof v) return 1;
      t1 = now_ns();
    } else {
      while (__atomic_load_n(word, __ATOMIC_SEQ_CST) == seen)
        futex(word, FUTEX_WAIT, seen);
      t1 = now_ns();
      seen = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    }
    int64_t t0;
    if (read(from_rel[0], &t0, sizeof t0) != sizeof t0) return 1;
    lat[k] = (double)(t1 - t0) / 1000.0;
  }
  if (write(to_rel[1], "e", 1) != 1) return 1;
  waitpid(pid, NULL, 0);
  if (loop) {
    __atomic_store_n(word, -1, __ATOMIC_SEQ_CST);
    futex(word, FUTEX_WAKE, 1);
    pthread_join(th, NULL);
  }
  qsort(lat, samples, sizeof *lat, cmp);
  int p99 = (int)(samples * 0.99);
  if (p99 >= samples) p99 = samples - 1;
  printf("%.1f %.1f\n", lat[samples / 2], lat[p99]);
  return 0;
}
