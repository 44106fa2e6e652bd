/* http_probe_async: http_probe on an event loop (see http_probe.h). One multi handle per
 * request keeps requests independent; a short timer drives it rather than socket
 * callbacks, which is simpler and costs nothing measurable for the few concurrent
 * requests a test makes. */
#include <event2/event.h>
#include <stdlib.h>

#include "http_probe.h"
#include "http_probe_internal.h"

struct http_probe_async {
  transfer_t *transfer;
  CURLM *multi;
  struct event *tick;
  bool done;
  bool taken;
  CURLcode code;
};

static void async_drive(http_probe_async_t *a) {
  int running = 0;
  curl_multi_perform(a->multi, &running);
  int left = 0;
  CURLMsg *msg;
  while ((msg = curl_multi_info_read(a->multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE) continue;
    a->code = msg->data.result;
    a->done = true;
  }
  if (a->done) event_del(a->tick);
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  async_drive(arg);
}

http_probe_async_t *http_probe_start(struct event_base *base, const http_request_t *request,
                                     rc_error_t *err) {
  transfer_t *x = transfer_create(request, err);
  if (x == NULL) return NULL;
  http_probe_async_t *a = calloc(1, sizeof *a);
  if (a == NULL || (a->multi = curl_multi_init()) == NULL ||
      (a->tick = event_new(base, -1, EV_PERSIST, on_tick, a)) == NULL ||
      curl_multi_add_handle(a->multi, transfer_handle(x)) != CURLM_OK) {
    rc_error_set(err, "%s: cannot start the request: out of memory",
                 request->url != NULL ? request->url : "(no URL)");
    if (a != NULL) {
      a->transfer = x;
      http_probe_async_destroy(a);
    } else {
      transfer_destroy(x);
    }
    return NULL;
  }
  a->transfer = x;
  struct timeval tv = {.tv_sec = 0, .tv_usec = HTTP_PROBE_ASYNC_TICK_MS * 1000};
  event_add(a->tick, &tv);
  async_drive(a); /* connect and send at once */
  return a;
}

bool http_probe_async_done(const http_probe_async_t *probe) {
  return probe->done;
}

http_response_t *http_probe_async_take(http_probe_async_t *probe, rc_error_t *err) {
  if (!probe->done || probe->taken) {
    rc_error_set(err, "HTTP request: %s", probe->taken ? "already taken" : "still running");
    return NULL;
  }
  probe->taken = true;
  return transfer_finish(probe->transfer, probe->code, err);
}

void http_probe_async_destroy(http_probe_async_t *probe) {
  if (probe == NULL) return;
  if (probe->tick != NULL) event_free(probe->tick);
  if (probe->multi != NULL && probe->transfer != NULL)
    curl_multi_remove_handle(probe->multi, transfer_handle(probe->transfer));
  transfer_destroy(probe->transfer);
  if (probe->multi != NULL) curl_multi_cleanup(probe->multi);
  free(probe);
}
