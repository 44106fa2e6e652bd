/* The part of a refworker end-to-end test that is the same in every file: an
 * in-process mock homeserver on its own event loop, a temporary directory with the
 * worker's log, and the worker process, stopped the way CL-05 wants (SIGTERM, the
 * mock's loop turning until it exits). Linked only into the tests that run refworker
 * against mockhs (tests/CMakeLists.txt). One test per process (Check's fork mode). */
#ifndef MOCK_WORKER_SUPPORT_H
#define MOCK_WORKER_SUPPORT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mockhs.h"

typedef struct mock_worker {
  struct event_base *base;
  mockhs_t *mock;
  char *temp_dir;
  char *log_path; /* <temp_dir>/worker.log, for --log */
  pid_t child;    /* the worker, or -1 */
  int64_t margin_ms; /* REFWORKER_TEST_MARGIN_MS (default 400): slack for slow builds */
} mock_worker_t;

/* Sets everything up: the loop, a mock for dialect d (with its HTTP side when http),
 * a temporary directory named after `name`. Check assertions on failure. */
void mock_worker_open(mock_worker_t *w, const char *name, proto_dialect_t d, bool http);

/* SIGTERM to the worker, then the mock's loop runs until it has exited (within 5 s plus
 * ten margins) and until the mock has read its last connection to the end, so a line
 * written just before the exit is in the ledger. SIGKILL and reap after the deadline.
 * Returns whether it exited by itself; *status gets its wait status. No worker: true,
 * status 0. */
bool mock_worker_stop(mock_worker_t *w, int *status);

/* Kills a worker still running, frees the mock and the loop, removes the directory. */
void mock_worker_close(mock_worker_t *w);

#endif
