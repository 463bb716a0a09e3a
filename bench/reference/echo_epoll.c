// A reference echo server in C (one thread, epoll), used only to check that the load generator
// is not the bottleneck: whatever the JavaScript servers reach, this one should beat.
//
//   cc -O2 -o /tmp/echo_epoll bench/reference/echo_epoll.c
//   /tmp/echo_epoll [PREFIX] [spin]  # prints "listening on 127.0.0.1:PORT"; '' or no PREFIX = raw
//
// With "spin" it polls epoll without ever sleeping, so the load generator never pays for
// waking it up: the fastest server this machine can run, to measure the generator against.
//
// Like echogate's chunk mode it answers every read with PREFIX + the bytes read (one writev);
// a reply the kernel does not take at once is kept and reading stops until it is flushed.
// On the peer's FIN (nothing is pending then) it closes.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BUF (64 * 1024)

struct conn {
  int fd;
  size_t pending_off, pending_len; // unsent bytes in out[]
  char out[BUF + 256];
  char in[BUF];
};

static const char *prefix = "";
static size_t prefix_len = 0;
static int ep;

static void drop(struct conn *c) {
  close(c->fd);
  free(c);
}

static void want(struct conn *c, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

// Sends what is pending; returns 1 when all of it went out.
static int flush(struct conn *c) {
  while (c->pending_len > 0) {
    ssize_t n = write(c->fd, c->out + c->pending_off, c->pending_len);
    if (n < 0) {
      if (errno == EAGAIN) return 0;
      return -1;
    }
    c->pending_off += (size_t)n;
    c->pending_len -= (size_t)n;
  }
  return 1;
}

static void on_readable(struct conn *c) {
  ssize_t n = read(c->fd, c->in, BUF);
  if (n < 0 && errno == EAGAIN) return;
  if (n <= 0) { // end of input (nothing is pending while we read) or an error
    drop(c);
    return;
  }
  memcpy(c->out, prefix, prefix_len);
  memcpy(c->out + prefix_len, c->in, (size_t)n);
  c->pending_off = 0;
  c->pending_len = prefix_len + (size_t)n;
  int done = flush(c);
  if (done < 0) drop(c);
  else if (!done) want(c, EPOLLOUT);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    prefix = argv[1];
    prefix_len = strlen(prefix);
  }
  int spin = argc > 2 && strcmp(argv[2], "spin") == 0;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096)) {
    perror("listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(lfd, (struct sockaddr *)&addr, &len);
  printf("c reference echo listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
  fflush(stdout);
  ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event events[256];
  for (;;) {
    int k = epoll_wait(ep, events, 256, spin ? 0 : -1);
    for (int i = 0; i < k; i++) {
      struct conn *c = events[i].data.ptr;
      if (c == NULL) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn *nc = calloc(1, sizeof *nc);
          nc->fd = fd;
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      if (events[i].events & EPOLLOUT) {
        int done = flush(c);
        if (done < 0) drop(c);
        else if (done) want(c, EPOLLIN);
      } else if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        on_readable(c);
      }
    }
  }
}
