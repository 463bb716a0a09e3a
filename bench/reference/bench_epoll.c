// A reference load generator in C (one thread, epoll), to check how close `echogate bench`
// comes to what this machine can generate: run both against the same fast server
// (bench/reference/echo_epoll.c in spin mode) and compare.
//
//   cc -O2 -o /tmp/bench_epoll bench/reference/bench_epoll.c
//   /tmp/bench_epoll PORT pingpong CONNS SIZE SECONDS [PREFIX]
//   /tmp/bench_epoll PORT stream CONNS WINDOW SECONDS
//
// pingpong: each connection sends SIZE bytes and waits for PREFIX + those bytes (the whole
// reply, compared) before sending again; prints round trips/s. stream: each connection keeps
// up to WINDOW bytes in flight in blocks of half of it (at most 64 KiB) against a raw echo
// server and checks the bytes come back in order; prints MB/s (10^6 payload bytes). It prints
// one JSON line: {"mode", "conns", "seconds", "operations", "opsPerS", "bytesEchoed",
// "throughputMBps", "mismatches", "errors"}. Connections are opened first; the clock then runs.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BLOCK (64 * 1024)
#define PATTERN 65521 // prime, as echogate's stream pattern

struct conn {
  int fd;
  uint64_t sent, received; // stream: payload bytes; pingpong: bytes of the current exchange
  size_t reply_len;        // pingpong: bytes of the current reply read
  char *reply;             // pingpong: the reply so far
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static unsigned char pattern[PATTERN + MAX_BLOCK];

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s PORT pingpong|stream CONNS SIZE SECONDS [PREFIX]\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]);
  int stream = strcmp(argv[2], "stream") == 0;
  int conns = atoi(argv[3]);
  size_t size = (size_t)atol(argv[4]);
  double seconds = atof(argv[5]);
  const char *prefix = argc > 6 ? argv[6] : (stream ? "" : "Echo=>");
  size_t prefix_len = strlen(prefix);
  size_t block = stream ? (size / 2 > MAX_BLOCK ? MAX_BLOCK : size / 2) : size;
  if (conns < 1 || size < 1 || block < 1 || seconds <= 0) return 2;

  for (size_t i = 0; i < PATTERN; i++) pattern[i] = (unsigned char)('a' + (i * 7 + i / 13) % 26);
  for (size_t i = PATTERN; i < sizeof pattern; i++) pattern[i] = pattern[i - PATTERN];
  unsigned char *message = malloc(size);
  for (size_t i = 0; i < size; i++) message[i] = (unsigned char)('a' + i % 26);
  unsigned char *expected = malloc(prefix_len + size);
  memcpy(expected, prefix, prefix_len);
  memcpy(expected + prefix_len, message, size);
  size_t reply_size = prefix_len + size;

  int ep = epoll_create1(0);
  struct conn *all = calloc((size_t)conns, sizeof *all);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  for (int i = 0; i < conns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
      perror("connect");
      return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    all[i].fd = fd;
    all[i].reply = malloc(reply_size + MAX_BLOCK);
    struct epoll_event ev = {.events = EPOLLIN | (stream ? EPOLLOUT : 0), .data.ptr = &all[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }

  uint64_t operations = 0, bytes = 0, mismatches = 0, errors = 0;
  static unsigned char buf[256 * 1024];
  double start = now_s(), end = start + seconds;
  if (!stream) {
    for (int i = 0; i < conns; i++) {
      if (write(all[i].fd, message, size) != (ssize_t)size) errors++;
    }
  }
  struct epoll_event events[256];
  while (now_s() < end) {
    int n = epoll_wait(ep, events, 256, 10);
    for (int k = 0; k < n; k++) {
      struct conn *c = events[k].data.ptr;
      if (events[k].events & (EPOLLERR | EPOLLHUP)) {
        errors++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        continue;
      }
      if (stream) {
        if (events[k].events & EPOLLIN) {
          ssize_t got = read(c->fd, buf, sizeof buf);
          if (got < 0 && errno == EAGAIN) got = 0;
          else if (got <= 0) {
            errors++;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            continue;
          }
          for (ssize_t j = 0; j < got; j++) {
            if (buf[j] != pattern[(c->received + (uint64_t)j) % PATTERN]) {
              mismatches++;
              break;
            }
          }
          uint64_t before = c->received / block;
          c->received += (uint64_t)got;
          operations += c->received / block - before;
          bytes += (uint64_t)got;
        }
        // Keep the window full: write whole blocks while there is room.
        while (c->sent - c->received + block <= size) {
          size_t offset = (size_t)(c->sent % PATTERN);
          ssize_t put = write(c->fd, pattern + offset, block);
          if (put <= 0) break;
          c->sent += (uint64_t)put;
          if ((size_t)put < block) break;
        }
        continue;
      }
      ssize_t got = read(c->fd, c->reply + c->reply_len, reply_size - c->reply_len);
      if (got < 0 && errno == EAGAIN) continue;
      if (got <= 0) {
        errors++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        continue;
      }
      c->reply_len += (size_t)got;
      if (c->reply_len < reply_size) continue;
      if (memcmp(c->reply, expected, reply_size) != 0) mismatches++;
      operations++;
      bytes += size;
      c->reply_len = 0;
      if (write(c->fd, message, size) != (ssize_t)size) errors++;
    }
  }
  double elapsed = now_s() - start;
  printf("{\"mode\":\"%s\",\"conns\":%d,\"seconds\":%.3f,\"operations\":%llu,\"opsPerS\":%.1f,\"bytesEchoed\":%llu,"
         "\"throughputMBps\":%.3f,\"mismatches\":%llu,\"errors\":%llu}\n",
         stream ? "stream" : "pingpong", conns, elapsed, (unsigned long long)operations, operations / elapsed,
         (unsigned long long)bytes, bytes / elapsed / 1e6, (unsigned long long)mismatches,
         (unsigned long long)errors);
  return mismatches > 0 || errors > 0;
}
