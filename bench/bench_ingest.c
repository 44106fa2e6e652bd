/* Reference worker ingest: RDATA rows per second applied end to end, mock to refworker
 * over loopback, against the same rows on a stream the worker does not consume (read and
 * parsed, then ignored: the same wire and framing without applying).
 *   bench_ingest [ROWS=200000] [BATCH=1000] [ROUNDS=3]   best round of each is reported
 * refworker is looked up next to this program. The end of a phase is observed through
 * the protocol: after the rows the mock sends POSITION caches master T+1 T+2, a gap the
 * worker can only see once it has applied every row before it (lines are handled in
 * order); it then asks the mock's HTTP side for (T, T+2], which the ledger records. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "mockhs.h"
#include "mockhs_internal.h" /* flow control on the connection's unsent bytes */

typedef struct find_arg {
  ledger_kind_t kind;
  const char *needle;
} find_arg_t;

static bool entry_has(const ledger_entry_t *e, void *arg) {
  const find_arg_t *f = arg;
  return e->kind == f->kind && strstr(e->text, f->needle) != NULL;
}

static size_t unsent(mockhs_t *mock, int id) {
  for (mock_conn_t *c = mock->conns; c != NULL; c = c->next)
    if (c->id == id && c->bev != NULL) return evbuffer_get_length(bufferevent_get_output(c->bev));
  return 0;
}

/* Emits rows with tokens from *token on `stream`, then the caches gap probe; returns
 * the seconds until the worker's catch-up request for it, or -1. */
static double phase(struct event_base *base, mockhs_t *mock, int conn, const char *stream,
                    mockhs_row_t *rows, size_t count, size_t batch, int64_t *caches_at,
                    int64_t *token) {
  rc_error_t err;
  for (size_t i = 0; i < count; i++) rows[i].token = (*token)++;
  bool consumed = strcmp(stream, "caches") == 0;
  int64_t before = consumed ? rows[count - 1].token : *caches_at;
  double t0 = bench_now();
  for (size_t at = 0; at < count; at += batch) {
    size_t n = count - at < batch ? count - at : batch;
    if (mockhs_emit(mock, stream, rows + at, n, &err) != 0) {
      fprintf(stderr, "bench_ingest: %s\n", err.msg);
      return -1;
    }
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    while (unsent(mock, conn) > 4u * 1024 * 1024) event_base_loop(base, EVLOOP_ONCE);
  }
  uint64_t from_seq = ledger_next_seq(mockhs_ledger(mock));
  if (mockhs_send_position(mock, conn, "caches", before + 1, before + 2) != 0) return -1;
  char needle[96];
  snprintf(needle, sizeof needle, "/caches/");
  find_arg_t want = {LEDGER_HTTP, needle};
  char from[64];
  snprintf(from, sizeof from, "from_token=%lld", (long long)before);
  for (;;) {
    const ledger_entry_t *e = mockhs_wait_for(mock, from_seq, entry_has, &want, 60000);
    if (e == NULL) {
      fprintf(stderr, "bench_ingest: no catch-up request for the probe within 60 s\n");
      return -1;
    }
    from_seq = e->seq + 1;
    if (strstr(e->text, from) != NULL) break;
  }
  double t = bench_now() - t0;
  *caches_at = before + 2;
  /* The mock's stream must stay ahead of the worker: move it to the probe's end. */
  stream_history_set(mockhs_history(mock), "caches", before + 2);
  if (*token <= before + 2) *token = before + 3;
  return t;
}

int main(int argc, char **argv) {
  size_t rows_total = argc > 1 ? (size_t)atol(argv[1]) : 200000;
  size_t batch = argc > 2 ? (size_t)atol(argv[2]) : 1000;
  int rounds = argc > 3 ? atoi(argv[3]) : 3;
  signal(SIGPIPE, SIG_IGN);
  alarm(600);
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return 1;
  self[n] = '\0';
  char refworker[PATH_MAX + 16];
  snprintf(refworker, sizeof refworker, "%s/refworker", dirname(self));

  struct event_base *base = event_base_new();
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, PROTO_DIALECT_MODERN, "bench.local");
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  if (mock == NULL) {
    fprintf(stderr, "bench_ingest: %s\n", err.msg);
    return 1;
  }
  char port[16], url[64], log[64];
  snprintf(port, sizeof port, "%d", mockhs_port(mock));
  snprintf(url, sizeof url, "http://127.0.0.1:%d", mockhs_http_port(mock));
  snprintf(log, sizeof log, "/tmp/bench_ingest.%d.log", (int)getpid());
  pid_t worker = fork();
  if (worker == 0) {
    execl(refworker, refworker, "--host", "127.0.0.1", "--port", port, "--server-name",
          "bench.local", "--dialect", "modern", "--log", log, "--http-url", url,
          "--stream", "caches=3", (char *)NULL);
    _exit(127);
  }
  find_arg_t replicate = {LEDGER_LINE, "REPLICATE"};
  if (mockhs_wait_for(mock, 1, entry_has, &replicate, 10000) == NULL) {
    fprintf(stderr, "bench_ingest: refworker (%s) did not connect\n", refworker);
    kill(worker, SIGKILL);
    return 1;
  }
  mockhs_run_for(mock, 300); /* the opening's positions and catch-ups settle */
  int conn = mockhs_latest_conn(mock);

  mockhs_row_t *rows = calloc(rows_total, sizeof *rows);
  for (size_t i = 0; i < rows_total; i++) {
    char json[256];
    bench_row(json, sizeof json, "caches", i);
    rows[i].json = strdup(json);
  }
  int64_t caches_at = 3, token = 1000000000;
  double best_apply = 1e9, best_ignore = 1e9;
  for (int r = 0; r < rounds; r++) {
    double t = phase(base, mock, conn, "caches", rows, rows_total, batch, &caches_at, &token);
    if (t < 0) break;
    if (t < best_apply) best_apply = t;
    t = phase(base, mock, conn, "receipts", rows, rows_total, batch, &caches_at, &token);
    if (t < 0) break;
    if (t < best_ignore) best_ignore = t;
  }
  int rc = 0;
  if (best_apply >= 1e9 || best_ignore >= 1e9) {
    rc = 1;
  } else {
    printf("bench_ingest: %zu rows a phase (caches rows, %s), batches of %zu, best of %d rounds\n",
           rows_total, "applied: stream caches; ignored: stream receipts", batch, rounds);
    bench_result("applied rows/s (caches)", (double)rows_total / best_apply, "rows/s",
                 "ignored rows/s (receipts)", (double)rows_total / best_ignore, 0.0);
  }
  kill(worker, SIGTERM);
  waitpid(worker, NULL, 0);
  unlink(log);
  for (size_t i = 0; i < rows_total; i++) free((char *)rows[i].json);
  free(rows);
  mockhs_destroy(mock);
  event_base_free(base);
  return rc;
}
