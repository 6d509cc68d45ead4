/*
 * notify.c - webhook deliveries (see notify.h).
 */
#include "serve/notify.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cancel.h"
#include "core/log.h"

typedef struct delivery {
  char *url, *body, *secret;
  struct delivery *next;
} delivery;

struct fl_notify {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  delivery *head, *tail;
  size_t pending, max_pending;
  int stopping;
  fl_cancel *cancel; /* fired on stop: ends the backoff sleeps */
  fl_metrics *metrics;
  pthread_t thread;
};

static void count(fl_notify *n, const char *outcome) {
  const char *labels[] = {outcome, NULL};
  if (n->metrics)
    fl_metrics_add(n->metrics, "freightliner_webhook_deliveries_total", labels,
                   1);
}

static void free_delivery(delivery *d) {
  if (!d)
    return;
  free(d->url);
  free(d->body);
  free(d->secret);
  free(d);
}

void fl_notify_sign(const char *secret, const char *body, size_t len,
                    char *out) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body,
       len, mac, &maclen);
  strcpy(out, "sha256=");
  for (unsigned i = 0; i < maclen; i++)
    snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
}

/* libcurl's write callback type: p cannot be const */
static size_t discard(char *p, size_t size, size_t n, // NOLINT
                      void *ud) {
  (void)p;
  (void)ud;
  return size * n;
}

/* One attempt: 0 delivered (2xx), -1 not. */
static int attempt(const delivery *d) {
  CURL *c = curl_easy_init();
  if (!c)
    return -1;
  char sig[80], header[128];
  fl_notify_sign(d->secret ? d->secret : "", d->body, strlen(d->body), sig);
  snprintf(header, sizeof header, "X-Freightliner-Signature: %s", sig);
  struct curl_slist *h =
      curl_slist_append(NULL, "Content-Type: application/json");
  h = curl_slist_append(h, "X-Freightliner-Event: run");
  if (d->secret)
    h = curl_slist_append(h, header);
  curl_easy_setopt(c, CURLOPT_URL, d->url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "freightliner-serve");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  long status = 0;
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return rc == CURLE_OK && status >= 200 && status < 300 ? 0 : -1;
}

static void *run(void *arg) {
  fl_notify *n = arg;
  for (;;) {
    pthread_mutex_lock(&n->mu);
    while (!n->head && !n->stopping)
      pthread_cond_wait(&n->cv, &n->mu);
    delivery *d = n->head;
    if (d) {
      n->head = d->next;
      if (!n->head)
        n->tail = NULL;
      n->pending--;
    }
    int stopping = n->stopping;
    pthread_mutex_unlock(&n->mu);
    if (!d)
      break; /* stopping with nothing queued */
    if (stopping) {
      count(n, "dropped");
      free_delivery(d);
      continue;
    }
    int ok = 0;
    for (int i = 1; i <= FL_NOTIFY_ATTEMPTS && !ok; i++) {
      if (attempt(d) == 0) {
        ok = 1;
        break;
      }
      if (i < FL_NOTIFY_ATTEMPTS) {
        count(n, "retried");
        if (fl_cancel_sleep_ms(n->cancel, fl_backoff_ms(i + 1, 500, 8000),
                               NULL) != FL_OK)
          break;
      }
    }
    count(n, ok ? "delivered" : "failed");
    if (!ok)
      FL_WARN("serve: webhook delivery failed after retries");
    free_delivery(d);
  }
  return NULL;
}

fl_notify *fl_notify_new(size_t max_pending, fl_metrics *metrics) {
  fl_notify *n = calloc(1, sizeof *n);
  if (!n)
    return NULL;
  n->max_pending = max_pending;
  n->metrics = metrics;
  n->cancel = fl_cancel_new(NULL);
  pthread_mutex_init(&n->mu, NULL);
  pthread_cond_init(&n->cv, NULL);
  if (!n->cancel || pthread_create(&n->thread, NULL, run, n) != 0) {
    fl_cancel_unref(n->cancel);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    free(n);
    return NULL;
  }
  return n;
}

void fl_notify_free(fl_notify *n) {
  if (!n)
    return;
  pthread_mutex_lock(&n->mu);
  n->stopping = 1;
  pthread_cond_signal(&n->cv);
  pthread_mutex_unlock(&n->mu);
  fl_cancel_fire(n->cancel);
  pthread_join(n->thread, NULL);
  fl_cancel_unref(n->cancel);
  pthread_mutex_destroy(&n->mu);
  pthread_cond_destroy(&n->cv);
  free(n);
}

int fl_notify_post(fl_notify *n, const char *url, const char *body,
                   const char *secret) {
  delivery *d = calloc(1, sizeof *d);
  if (!d)
    return -1;
  d->url = strdup(url);
  d->body = strdup(body);
  d->secret = secret ? strdup(secret) : NULL;
  if (!d->url || !d->body || (secret && !d->secret)) {
    free_delivery(d);
    return -1;
  }
  pthread_mutex_lock(&n->mu);
  int rc = -1;
  if (!n->stopping && n->pending < n->max_pending) {
    if (n->tail)
      n->tail->next = d;
    else
      n->head = d;
    n->tail = d;
    n->pending++;
    pthread_cond_signal(&n->cv);
    rc = 0;
    d = NULL;
  }
  pthread_mutex_unlock(&n->mu);
  if (d) {
    count(n, "dropped");
    free_delivery(d);
  }
  return rc;
}
