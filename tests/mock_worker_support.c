#include "mock_worker_support.h"

#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "test_support.h"

void mock_worker_open(mock_worker_t *w, const char *name, proto_dialect_t d, bool http) {
  const char *margin = getenv("REFWORKER_TEST_MARGIN_MS");
  w->margin_ms = margin != NULL && atoi(margin) > 0 ? atoi(margin) : 400;
  w->child = -1;
  w->temp_dir = test_make_temp_dir(name);
  ck_assert_ptr_nonnull(w->temp_dir);
  w->log_path = test_path(w->temp_dir, "worker.log");
  w->base = event_base_new();
  ck_assert_ptr_nonnull(w->base);
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, d, "test.local");
  cfg.http_enabled = http;
  rc_error_t err;
  w->mock = mockhs_create(w->base, &cfg, &err);
  ck_assert_msg(w->mock != NULL, "mock homeserver: %s", err.msg);
}

typedef struct exit_wait {
  pid_t pid;
  int *status;
} exit_wait_t;

static bool exited(void *arg) {
  exit_wait_t *e = arg;
  return waitpid(e->pid, e->status, WNOHANG) == e->pid;
}

static bool last_conn_closed(void *arg) {
  mockhs_t *mock = arg;
  int conn = mockhs_latest_conn(mock);
  return conn < 0 || !mockhs_conn_is_open(mock, conn);
}

bool mock_worker_stop(mock_worker_t *w, int *status) {
  *status = 0;
  if (w->child <= 0) return true;
  kill(w->child, SIGTERM);
  exit_wait_t e = {.pid = w->child, .status = status};
  bool ok = mockhs_run_until(w->mock, exited, &e, (int)(5000 + 10 * w->margin_ms), 10);
  if (ok) {
    mockhs_run_until(w->mock, last_conn_closed, w->mock, 2000, 10);
  } else {
    kill(w->child, SIGKILL);
    waitpid(w->child, NULL, 0);
  }
  w->child = -1;
  return ok;
}

void mock_worker_close(mock_worker_t *w) {
  if (w->child > 0) {
    kill(w->child, SIGKILL);
    waitpid(w->child, NULL, 0);
    w->child = -1;
  }
  mockhs_destroy(w->mock);
  w->mock = NULL;
  if (w->base != NULL) event_base_free(w->base);
  w->base = NULL;
  if (w->temp_dir != NULL) test_remove_tree(w->temp_dir);
  free(w->temp_dir);
  free(w->log_path);
  w->temp_dir = w->log_path = NULL;
}
