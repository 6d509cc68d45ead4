/*
 * probe.c - registry reachability (see probe.h).
 */
#include "serve/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 2000
#define TARGET_MAX 256

struct fl_probe {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char (*targets)[TARGET_MAX];
  size_t ntargets;
  int changed, stopping, started;
  char failed[TARGET_MAX]; /* "" when all answered */
  unsigned interval_s;
  pthread_t thread;
};

/* 0 if a TCP connection to target opens within the timeout. */
static int reach(const char *target) {
  char host[TARGET_MAX];
  const char *port = "443";
  snprintf(host, sizeof host, "%s", target);
  char *colon = strrchr(host, ':');
  if (host[0] == '[') { /* [v6]:port */
    char *end = strchr(host, ']');
    if (!end)
      return -1;
    *end = '\0';
    if (end[1] == ':')
      port = end + 2;
    memmove(host, host + 1, strlen(host));
  } else if (colon && !strchr(colon + 1, ':') && colon == strchr(host, ':')) {
    *colon = '\0';
    port = colon + 1;
  }
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &ai) != 0)
    return -1;
  int ok = -1;
  for (struct addrinfo *a = ai; a && ok != 0; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
      continue;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      ok = 0;
    } else if (errno == EINPROGRESS) {
      struct pollfd pfd = {fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      if (poll(&pfd, 1, CONNECT_TIMEOUT_MS) == 1 &&
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
        ok = 0;
    }
    close(fd);
  }
  freeaddrinfo(ai);
  return ok;
}

static void *run(void *arg) {
  fl_probe *p = arg;
  pthread_mutex_lock(&p->mu);
  while (!p->stopping) {
    /* one round, on a copy of the list, without the lock */
    size_t n = p->ntargets;
    char(*copy)[TARGET_MAX] = n ? malloc(n * TARGET_MAX) : NULL;
    if (copy)
      memcpy(copy, p->targets, n * TARGET_MAX);
    p->changed = 0;
    pthread_mutex_unlock(&p->mu);
    char failed[TARGET_MAX] = "";
    for (size_t i = 0; copy && i < n && !failed[0]; i++)
      if (reach(copy[i]) != 0)
        snprintf(failed, sizeof failed, "%s", copy[i]);
    free(copy);
    pthread_mutex_lock(&p->mu);
    if (!p->changed) /* a round over an old list says nothing */
      memcpy(p->failed, failed, sizeof failed);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += p->interval_s;
    while (!p->stopping && !p->changed &&
           pthread_cond_timedwait(&p->cv, &p->mu, &ts) != ETIMEDOUT) {
    }
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

fl_probe *fl_probe_new(unsigned interval_s) {
  fl_probe *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->interval_s = interval_s;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  if (interval_s > 0) {
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
      pthread_mutex_destroy(&p->mu);
      pthread_cond_destroy(&p->cv);
      free(p);
      return NULL;
    }
    p->started = 1;
  }
  return p;
}

void fl_probe_free(fl_probe *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->stopping = 1;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (p->started)
    pthread_join(p->thread, NULL);
  free(p->targets);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}

int fl_probe_set_targets(fl_probe *p, const char *const *targets, size_t n) {
  char(*t)[TARGET_MAX] = n ? calloc(n, TARGET_MAX) : NULL;
  if (n && !t)
    return -1;
  for (size_t i = 0; i < n; i++)
    snprintf(t[i], TARGET_MAX, "%s", targets[i]);
  pthread_mutex_lock(&p->mu);
  free(p->targets);
  p->targets = t;
  p->ntargets = n;
  p->changed = 1;
  p->failed[0] = '\0';
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int fl_probe_ok(fl_probe *p, char *out, size_t n) {
  pthread_mutex_lock(&p->mu);
  int ok = p->failed[0] == '\0';
  if (!ok)
    snprintf(out, n, "%s", p->failed);
  pthread_mutex_unlock(&p->mu);
  return ok;
}
