/* C peers for bench/shm.bench.mjs, on the same POSIX shared memory segments.
 *
 *   shm-peer add NAME N            N x __atomic_fetch_add(+1) on the int32 at
 *                                  offset 0 of NAME, after a barrier: the int32
 *                                  at offset 64 counts arrivals up to argv[4]
 *                                  (default 1). Prints elapsed ns.
 *   shm-peer memcpy NAME ROUNDS    memcpy of the whole segment from private
 *                                  memory into NAME (pages touched first);
 *                                  prints the median ns of ROUNDS copies.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *map(const char *name, size_t *size) {
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) {
    perror("shm_open");
    exit(1);
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    perror("fstat");
    exit(1);
  }
  *size = (size_t)st.st_size;
  void *p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  close(fd);
  return p;
}

static int cmp(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: shm-peer add|memcpy NAME N\n");
    return 2;
  }
  size_t size;
  uint8_t *p = map(argv[2], &size);
  long n = atol(argv[3]);
  if (strcmp(argv[1], "add") == 0) {
    int parties = argc > 4 ? atoi(argv[4]) : 1;
    int32_t *counter = (int32_t *)p, *arrived = (int32_t *)(p + 64);
    __atomic_fetch_add(arrived, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(arrived, __ATOMIC_SEQ_CST) < parties) {}
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
      __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST);
    printf("%lld\n", (long long)(now_ns() - t0));
  } else if (strcmp(argv[1], "memcpy") == 0) {
    uint8_t *src = malloc(size);
    memset(src, 0x5a, size);
    memset(p, 0, size);
    int64_t *t = calloc((size_t)n, sizeof *t);
    for (long r = 0; r < n; r++) {
      src[r] = (uint8_t)r;
      int64_t t0 = now_ns();
      memcpy(p, src, size);
      t[r] = now_ns() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("%lld\n", (long long)t[n / 2]);
    free(src);
    free(t);
  } else {
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
  }
  munmap(p, size);
  return 0;
}
