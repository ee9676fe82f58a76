// What the daemon's listeners need from Linux that Swift's Glibc module does not offer:
// epoll (not in the module at all; `struct epoll_event` is packed, which Swift cannot build)
// and accept4 (declared only under _GNU_SOURCE).
#ifndef CSOCKETS_H
#define CSOCKETS_H

#include <stdint.h>

// An epoll instance and an eventfd, both close-on-exec; -1 and errno on failure.
int csockets_epoll_create(void);
int csockets_eventfd(void);

// EPOLL_CTL_ADD / EPOLL_CTL_MOD of `fd` for `events` (CSOCKETS_IN / CSOCKETS_OUT), the fd as
// the event's data. 0, or -1 and errno.
int csockets_epoll_add(int epfd, int fd, uint32_t events);
int csockets_epoll_modify(int epfd, int fd, uint32_t events);

// epoll_wait, unpacked: the ready fds and their events in two arrays of `max`.
int csockets_epoll_wait(int epfd, int *fds, uint32_t *events, int max, int timeout_ms);

// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC; `addr` is a struct sockaddr_storage. (No system
// header here: one included by this module would hide its names from Swift's Glibc module.)
int csockets_accept(int fd, void *addr, uint32_t *len);

extern const uint32_t CSOCKETS_IN;   // EPOLLIN
extern const uint32_t CSOCKETS_OUT;  // EPOLLOUT
extern const uint32_t CSOCKETS_HUP;  // EPOLLHUP | EPOLLERR | EPOLLRDHUP

#endif
