#define _GNU_SOURCE
#include "CSockets.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

const uint32_t CSOCKETS_IN = EPOLLIN;
const uint32_t CSOCKETS_OUT = EPOLLOUT;
const uint32_t CSOCKETS_HUP = EPOLLHUP | EPOLLERR | EPOLLRDHUP;

int csockets_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int csockets_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

static int control(int epfd, int op, int fd, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    return epoll_ctl(epfd, op, fd, &ev);
}

int csockets_epoll_add(int epfd, int fd, uint32_t events) { return control(epfd, EPOLL_CTL_ADD, fd, events); }

int csockets_epoll_modify(int epfd, int fd, uint32_t events) { return control(epfd, EPOLL_CTL_MOD, fd, events); }

int csockets_epoll_wait(int epfd, int *fds, uint32_t *events, int max, int timeout_ms) {
    struct epoll_event ready[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, ready, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        fds[i] = ready[i].data.fd;
        events[i] = ready[i].events;
    }
    return n;
}

int csockets_accept(int fd, void *addr, uint32_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
