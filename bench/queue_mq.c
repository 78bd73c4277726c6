// The limit: two C processes on POSIX message queues (blocking mq_send /
// mq_receive), the same kernel path posix-ipc's Queue uses.
// queue_mq SIZE N_RTT N_TP -> one JSON line:
//   {"rtt_median_us":..,"rtt_p99_us":..,"rate":..}
// Round trip: parent sends on REQ, child echoes on RESP. Throughput: the
// parent sends N_TP messages one way; rate = N_TP / (time until the child
// reports the last one received).
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static mqd_t open_q(const char* name, long msgsize) {
  struct mq_attr attr = {0};
  attr.mq_maxmsg = 10;
  attr.mq_msgsize = msgsize;
  mqd_t q = mq_open(name, O_RDWR | O_CREAT, 0600, &attr);
  if (q == (mqd_t)-1) {
    perror("mq_open");
    exit(1);
  }
  return q;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: queue_mq SIZE N_RTT N_TP\n");
    return 2;
  }
  long size = atol(argv[1]);
  int n_rtt = atoi(argv[2]), n_tp = atoi(argv[3]);
  char req_name[64], resp_name[64];
  snprintf(req_name, sizeof req_name, "/pipc-bench-c-%d-req", getpid());
  snprintf(resp_name, sizeof resp_name, "/pipc-bench-c-%d-resp", getpid());
  long msgsize = size < 64 ? 64 : size;
  mqd_t req = open_q(req_name, msgsize), resp = open_q(resp_name, msgsize);
  char* buf = calloc(1, msgsize);
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < n_rtt; i++) {
      ssize_t n = mq_receive(req, buf, msgsize, NULL);
      mq_send(resp, buf, n, 0);
    }
    for (int i = 0; i < n_tp; i++) mq_receive(req, buf, msgsize, NULL);
    mq_send(resp, buf, 1, 0);
    _exit(0);
  }
  double* lat = malloc(sizeof(double) * n_rtt);
  for (int i = 0; i < n_rtt; i++) {
    double t0 = now_us();
    mq_send(req, buf, size, 0);
    mq_receive(resp, buf, msgsize, NULL);
    lat[i] = now_us() - t0;
  }
  double t0 = now_us();
  for (int i = 0; i < n_tp; i++) mq_send(req, buf, size, 0);
  mq_receive(resp, buf, msgsize, NULL);
  double dt = now_us() - t0;
  waitpid(pid, NULL, 0);
  qsort(lat, n_rtt, sizeof(double), cmp);
  printf("{\"rtt_median_us\":%.2f,\"rtt_p99_us\":%.2f,\"rate\":%.0f}\n",
         lat[n_rtt / 2], lat[(int)(n_rtt * 0.99)], n_tp / (dt / 1e6));
  mq_unlink(req_name);
  mq_unlink(resp_name);
  return 0;
}
