#include "stream_catchup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wlog.h"

#define WLOG_LOGGER "synapse.replication.tcp.handler"

struct stream_catchup {
  http_catchup_t *http;
  stream_state_t *state;
  char *stream;
  char *instance;
  int64_t from; /* of the page being fetched */
  int64_t upto;
  http_catchup_request_t *request; /* in flight, or NULL */
  stream_catchup_done_fn done;
  void *arg;
  char context[256]; /* the log context the job was started in */
};

static void catchup_on_page(void *arg, const http_catchup_page_t *page, const char *error);

static int catchup_request_page(stream_catchup_t *job, rc_error_t *err) {
  WLOG_INFO("Fetching replication rows for '%s' / %s between %" PRId64 " and %" PRId64, job->stream,
            job->instance, job->from, job->upto);
  job->request =
      http_catchup_fetch(job->http, job->stream, job->from, job->upto, catchup_on_page, job, err);
  return job->request != NULL ? 0 : -1;
}

/* Applies the page's rows, one unit per run of equal tokens (spec §2.3, PO-05). */
static int catchup_apply_page(stream_catchup_t *job, const http_catchup_page_t *page,
                              rc_error_t *err) {
  const char **rows = page->count > 0 ? malloc(page->count * sizeof *rows) : NULL;
  if (page->count > 0 && rows == NULL)
    return rc_error_set(err, "out of memory applying %zu rows", page->count);
  int rc = 0;
  for (size_t start = 0; start < page->count && rc == 0;) {
    size_t end = start;
    while (end < page->count && page->updates[end].token == page->updates[start].token) {
      rows[end - start] = page->updates[end].row;
      end++;
    }
    rc = stream_state_apply_unit(job->state, job->stream, job->instance, page->updates[start].token,
                                 rows, end - start, err);
    start = end;
  }
  free(rows);
  return rc;
}

static void catchup_on_page(void *arg, const http_catchup_page_t *page, const char *error) {
  wlog_callback_begin(); /* http_catchup calls back from the loop */
  stream_catchup_t *job = arg;
  job->request = NULL;
  /* Continue in the context of the command that started the catch-up, as Synapse's
   * queue runner does across its awaits. */
  wlog_context_enter(job->context);
  char failure[4096];
  rc_error_t err;
  if (error != NULL) {
    snprintf(failure, sizeof failure, "%s", error);
  } else if (catchup_apply_page(job, page, &err) != 0) {
    snprintf(failure, sizeof failure, "applying fetched rows: %s", err.msg);
  } else if (page->limited) {
    job->from = page->upto_token;
    if (catchup_request_page(job, &err) == 0) {
      wlog_context_reset();
      return;
    }
    snprintf(failure, sizeof failure, "%s", err.msg);
  } else {
    job->done(job->arg, job, NULL); /* may free the job */
    wlog_context_reset();
    return;
  }
  job->done(job->arg, job, failure); /* may free the job */
  wlog_context_reset();
}

stream_catchup_t *stream_catchup_start(http_catchup_t *http, stream_state_t *state,
                                       const char *stream, const char *instance, int64_t from,
                                       int64_t upto, stream_catchup_done_fn done, void *arg,
                                       rc_error_t *err) {
  stream_catchup_t *job = calloc(1, sizeof *job);
  if (job == NULL || (job->stream = strdup(stream)) == NULL ||
      (job->instance = strdup(instance)) == NULL) {
    stream_catchup_destroy(job);
    rc_error_set(err, "catch-up of %s: out of memory", stream);
    return NULL;
  }
  job->http = http;
  job->state = state;
  job->from = from;
  job->upto = upto;
  job->done = done;
  job->arg = arg;
  snprintf(job->context, sizeof job->context, "%s", wlog_context_current());
  if (catchup_request_page(job, err) != 0) {
    stream_catchup_destroy(job);
    return NULL;
  }
  return job;
}

void stream_catchup_destroy(stream_catchup_t *job) {
  if (job == NULL) return;
  http_catchup_cancel(job->request);
  free(job->stream);
  free(job->instance);
  free(job);
}
