// A gate knock generator in C (epoll, one thread), independent of the runtimes it measures:
// `npm run bench`'s connect cell uses echogate's own generator, which shares code and a runtime
// with what it measures. Each knock is a new TCP connection: connect, send the token, read the
// reply until the server's FIN, check it, close. CONNS knocks are in flight at once, KNOCKS in all.
//
//   cc -O2 -o knock_epoll bench/reference/knock_epoll.c
//   ./knock_epoll PORT KNOCKS [CONNS=32] [TOKEN=1] [EXPECT="welcome to server!"]
//
// Prints one line, `knocks N errors E mismatches M seconds S`, and exits 1 if E or M is not 0.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING, READING };

struct knock {
  int fd;
  int state;
  size_t got;
  char reply[64];
};

static struct sockaddr_in target;
static const char *token;
static size_t token_len;
static const char *expect;
static size_t expect_len;
static int epfd;
static long started, done, errors, mismatches, total;

static void begin(struct knock *k) {
  k->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (k->fd < 0) {
    perror("socket");
    exit(2);
  }
  int one = 1;
  setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  k->state = CONNECTING;
  k->got = 0;
  started++;
  if (connect(k->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
    perror("connect");
    exit(2);
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = k};
  epoll_ctl(epfd, EPOLL_CTL_ADD, k->fd, &ev);
}

static void finish(struct knock *k, int ok) {
  close(k->fd);
  done++;
  if (ok < 0) errors++;
  else if (!ok) mismatches++;
  if (started < total) begin(k);
}

static void step(struct knock *k, unsigned events) {
  if (k->state == CONNECTING) {
    int error = 0;
    socklen_t len = sizeof error;
    getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error || (events & EPOLLERR)) return finish(k, -1);
    if (send(k->fd, token, token_len, MSG_NOSIGNAL) != (ssize_t)token_len) return finish(k, -1);
    k->state = READING;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = k};
    epoll_ctl(epfd, EPOLL_CTL_MOD, k->fd, &ev);
    return;
  }
  while (1) {
    ssize_t n = read(k->fd, k->reply + k->got, sizeof k->reply - k->got);
    if (n > 0) {
      k->got += n;
      if (k->got == sizeof k->reply) return finish(k, 0);
      continue;
    }
    if (n == 0) return finish(k, k->got == expect_len && memcmp(k->reply, expect, expect_len) == 0);
    if (errno == EAGAIN) return;
    if (errno == EINTR) continue;
    return finish(k, -1);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PORT KNOCKS [CONNS=32] [TOKEN=1] [EXPECT='welcome to server!']\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]);
  total = atol(argv[2]);
  int conns = argc > 3 ? atoi(argv[3]) : 32;
  token = argc > 4 ? argv[4] : "1";
  token_len = strlen(token);
  expect = argc > 5 ? argv[5] : "welcome to server!";
  expect_len = strlen(expect);
  if (port <= 0 || total <= 0 || conns <= 0) {
    fprintf(stderr, "knock_epoll: PORT, KNOCKS and CONNS must be positive\n");
    return 2;
  }
  target.sin_family = AF_INET;
  target.sin_port = htons(port);
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct knock *knocks = calloc(conns, sizeof *knocks);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < conns && started < total; i++) begin(&knocks[i]);
  struct epoll_event events[256];
  while (done < total) {
    int n = epoll_wait(epfd, events, 256, 10000);
    if (n == 0) {
      fprintf(stderr, "knock_epoll: no progress in 10 s (%ld of %ld done)\n", done, total);
      return 2;
    }
    for (int i = 0; i < n; i++) step(events[i].data.ptr, events[i].events);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("knocks %ld errors %ld mismatches %ld seconds %.3f\n", done, errors, mismatches, seconds);
  return errors || mismatches ? 1 : 0;
}
