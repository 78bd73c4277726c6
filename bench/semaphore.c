/* The physical limits for the semaphore benchmark.
 *
 *   semaphore pair <name> <iterations>
 *       uncontended sem_trywait + sem_post pairs; prints ns per pair.
 *   semaphore pong <ping> <pong> <rounds> <spin_us>
 *       waits on ping, posts pong, <rounds> times (the responder).
 *   semaphore ping <ping> <pong> <rounds> <spin_us>
 *       posts ping, waits on pong; prints round-trip percentiles (us) and
 *       CPU microseconds per round trip of this process.
 * A spin_us > 0 spins on sem_trywait that long before sleeping in sem_wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static sem_t *open_sem(const char *name) {
  sem_t *s = sem_open(name, O_CREAT, 0600, 0);
  if (s == SEM_FAILED) {
    perror("sem_open");
    exit(1);
  }
  return s;
}

static void wait_spin(sem_t *s, long long spin_ns) {
  if (spin_ns > 0) {
    long long stop = now_ns() + spin_ns;
    do {
      if (sem_trywait(s) == 0) return;
    } while (now_ns() < stop);
  }
  while (sem_wait(s) == -1 && errno == EINTR) {}
}

static int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "pair") == 0) {
    sem_t *s = open_sem(argv[2]);
    sem_post(s);
    long n = atol(argv[3]);
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
      if (sem_trywait(s) != 0) abort();
      sem_post(s);
    }
    long long t1 = now_ns();
    printf("%.3f\n", (double)(t1 - t0) / n);
    sem_close(s);
    return 0;
  }
  if (argc >= 6 &&
      (strcmp(argv[1], "ping") == 0 || strcmp(argv[1], "pong") == 0)) {
    sem_t *ping = open_sem(argv[2]);
    sem_t *pong = open_sem(argv[3]);
    long rounds = atol(argv[4]);
    long long spin = atol(argv[5]) * 1000LL;
    if (argv[1][1] == 'o') {
      for (long i = 0; i < rounds; i++) {
        wait_spin(ping, spin);
        sem_post(pong);
      }
      return 0;
    }
    long long *rt = malloc(sizeof(long long) * rounds);
    double c0 = cpu_us();
    for (long i = 0; i < rounds; i++) {
      long long t0 = now_ns();
      sem_post(ping);
      wait_spin(pong, spin);
      rt[i] = now_ns() - t0;
    }
    double c1 = cpu_us();
    qsort(rt, rounds, sizeof(long long), cmp);
    printf("%.2f %.2f %.2f\n", rt[rounds / 2] / 1e3,
           rt[rounds * 99 / 100] / 1e3, (c1 - c0) / rounds);
    return 0;
  }
  fprintf(stderr, "usage: see the comment at the top of semaphore.c\n");
  return 2;
}
