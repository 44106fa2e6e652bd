#include "mockhs_modes.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "fixture_play.h"
#include "fixture_write.h"
#include "mock_proxy.h"
#include "mockhs.h"
#include "rc_clock.h"

void mockhs_print_ledger(const ledger_t *ledger, uint64_t *next_seq) {
  char row[PROTO_MAX_LINE * 4 + 256];
  if (*next_seq < ledger_first_seq(ledger)) *next_seq = ledger_first_seq(ledger);
  for (; *next_seq < ledger_next_seq(ledger); (*next_seq)++) {
    const ledger_entry_t *e = ledger_get(ledger, *next_seq);
    if (e == NULL) continue;
    ledger_format_entry(ledger, e, row, sizeof row);
    printf("%s\n", row);
  }
  fflush(stdout);
}

/* ---- --fixture ------------------------------------------------------------------------ */

typedef struct live {
  mockhs_t *mock;
  uint64_t next_seq;
} live_t;

static void on_tick(void *arg) {
  live_t *l = arg;
  mockhs_print_ledger(mockhs_ledger(l->mock), &l->next_seq);
}

static void on_step(void *arg, const char *line) {
  on_tick(arg);
  printf("step  %s\n", line);
  fflush(stdout);
}

int mockhs_play_fixture(struct event_base *base, const mockhs_args_t *a) {
  rc_error_t err;
  fixture_t *f = fixture_load(a->fixture_path, NULL, &err);
  if (f == NULL) {
    fprintf(stderr, "mockhs: %s\n", err.msg);
    return 2;
  }
  /* A check that cannot be made is not a pass: refuse before anyone connects. */
  const struct {
    unsigned need;
    const char *given, *what, *option;
  } channels[] = {{FIXTURE_NEEDS_LOG, a->sut_log, "log", "--sut-log FILE"},
                  {FIXTURE_NEEDS_METRICS, a->sut_metrics, "metrics", "--sut-metrics URL"},
                  {FIXTURE_NEEDS_SUT_HTTP, a->sut_http, "HTTP listener", "--sut-http URL"}};
  for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++) {
    if (!(f->needs & channels[i].need) || channels[i].given != NULL) continue;
    fprintf(stderr, "mockhs: %s cannot be played: its steps need the worker's %s (%s)\n",
            a->fixture_path, channels[i].what, channels[i].option);
    fixture_destroy(f);
    return 2;
  }
  if (f->needs & FIXTURE_NEEDS_DB) {
    fprintf(stderr,
            "mockhs: %s cannot be played: its db steps observe the worker's database, which only "
            "replcheck run can (a profile with role pg)\n",
            a->fixture_path);
    fixture_destroy(f);
    return 2;
  }
  proto_dialect_t dialect = a->dialect;
  unsigned bit = 1u << dialect;
  char dialects[32];
  if (!a->dialect_given && !(f->dialects & bit))
    dialect = (f->dialects & FIXTURE_DIALECT_MODERN) ? PROTO_DIALECT_MODERN : PROTO_DIALECT_2018;
  if (!(f->dialects & (1u << dialect)) || !(f->transports & FIXTURE_TRANSPORT_TCP)) {
    fprintf(stderr, "mockhs: %s is for dialect %s over %s; this mock speaks %s over tcp\n",
            a->fixture_path, fixture_dialects_text(f->dialects, dialects, sizeof dialects),
            (f->transports & FIXTURE_TRANSPORT_TCP) ? "tcp" : "redis only",
            proto_dialect_name(dialect));
    fixture_destroy(f);
    return 2;
  }
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, dialect, a->server_name);
  cfg.port = a->port;
  cfg.ping_interval_ms = a->ping_interval_ms;
  cfg.torture_level = a->torture_level;
  cfg.torture_seed = a->seed;
  fixture_apply_config(f, &cfg);
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  if (mock == NULL) {
    fprintf(stderr, "mockhs: %s\n", err.msg);
    fixture_destroy(f);
    return 1;
  }
  printf(
      "mockhs: playing %s (%zu steps, %s): listening on 127.0.0.1:%d, HTTP on 127.0.0.1:%d,"
      " dialect %s, server name %s, worker instance %s\n",
      a->fixture_path, f->step_count, f->requirements, mockhs_port(mock), mockhs_http_port(mock),
      proto_dialect_name(dialect), a->server_name, a->instance_name);
  if (a->torture_level > 0)
    printf("mockhs: torture level %d, seed %llu\n", a->torture_level, (unsigned long long)a->seed);
  /* The fixture's fake federation remotes: the worker is told their URLs by hand. */
  fake_remote_t *remotes[FIXTURE_MAX_REMOTES] = {0};
  for (size_t i = 0; i < f->remote_count; i++) {
    if ((remotes[i] = fake_remote_create(base, f->remotes[i], &err)) == NULL) {
      fprintf(stderr, "mockhs: %s\n", err.msg);
      for (size_t k = 0; k < i; k++) fake_remote_destroy(remotes[k]);
      mockhs_destroy(mock);
      fixture_destroy(f);
      return 1;
    }
    printf("mockhs: fake remote %s at %s (refworker: --remote %s=%s)\n", f->remotes[i],
           fake_remote_url(remotes[i]), f->remotes[i], fake_remote_url(remotes[i]));
  }
  printf("mockhs: waiting up to %d ms for the worker to connect\n", a->connect_timeout_ms);
  fflush(stdout);
  live_t live = {.mock = mock, .next_seq = 1};
  fixture_env_t env = {.mock = mock,
                       .vars = {.server_name = a->server_name, .instance_name = a->instance_name},
                       .log_path = a->sut_log,
                       .metrics_url = a->sut_metrics,
                       .http_url = a->sut_http,
                       .remotes = remotes,
                       .remote_count = f->remote_count,
                       .first_connect_ms = a->connect_timeout_ms,
                       .on_step = on_step,
                       .on_tick = on_tick,
                       .arg = &live};
  fixture_result_t r;
  fixture_play(f, &env, &r);
  on_tick(&live);
  int status = r.outcome == FIXTURE_PASSED ? 0 : r.outcome == FIXTURE_FAILED ? 1 : 2;
  if (status == 0)
    printf("mockhs: PASSED: %zu of %zu steps (%s)\n", r.steps_passed, r.steps_total,
           f->requirements);
  else
    printf(
        "mockhs: %s after %zu of %zu steps\n  Requirement (%s): %s\n  Expected: %s\n"
        "  Actual: %s\n",
        status == 1 ? "FAILED" : "ERROR (the fixture cannot be played)", r.steps_passed,
        r.steps_total, f->requirements, f->requirement, r.expected ? r.expected : "",
        r.actual ? r.actual : "");
  if (a->torture_level > 0) {
    char summary[400];
    mockhs_torture_summary(mock, summary, sizeof summary);
    printf("mockhs: %s (same --torture and --seed, same schedule)\n", summary);
  }
  fflush(stdout);
  fixture_result_clear(&r);
  for (size_t i = 0; i < f->remote_count; i++) fake_remote_destroy(remotes[i]);
  mockhs_destroy(mock);
  fixture_destroy(f);
  return status;
}

/* ---- --proxy -------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  (void)arg;
  stop_requested = 1;
}

/* The first text of a line side/command in the ledger ("SERVER x" -> "x"), or NULL. */
static const char *first_argument(const ledger_t *ledger, ledger_side_t side, const char *word,
                                  char *buf, size_t cap) {
  size_t n = strlen(word);
  for (uint64_t seq = ledger_first_seq(ledger); seq < ledger_next_seq(ledger); seq++) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (e->kind == LEDGER_LINE && e->side == side && e->len > n + 1 &&
        strncmp(e->text, word, n) == 0 && e->text[n] == ' ') {
      snprintf(buf, cap, "%s", e->text + n + 1);
      return buf;
    }
  }
  return NULL;
}

static int write_session(const mockhs_args_t *a, const ledger_t *ledger, int sessions) {
  char server[256], instance[256], tmp[4200], comment[600];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", a->record_path, (long)getpid());
  FILE *out = fopen(tmp, "w");
  if (out == NULL) {
    fprintf(stderr, "mockhs: cannot write %s: %s\n", tmp, strerror(errno));
    return -1;
  }
  snprintf(comment, sizeof comment,
           "Recorded by mockhs --proxy %s: a real main and a worker, %d connection(s).\n"
           "Edit 'requirements' and 'requirement' to what this session shows.",
           a->proxy_target, sessions);
  fixture_write_options_t o = {
      .comment = comment,
      .requirements = a->requirements,
      .level = "MUST",
      .requirement = a->requirement,
      .source = "session recorded with mockhs --proxy",
      .dialect = a->dialect,
      .transport = "tcp",
      .ping_interval_ms = -1,
      .server_name = first_argument(ledger, LEDGER_SIDE_MOCK, "SERVER", server, sizeof server),
      .instance_name = first_argument(ledger, LEDGER_SIDE_SUT, "NAME", instance, sizeof instance),
      .writer = "master",
      .from_seq = 1,
      .to_seq = ledger_next_seq(ledger),
      .end_ns = rc_clock_mono_ns(),
  };
  rc_error_t err;
  int rc = fixture_write_ledger(out, ledger, &o, &err);
  if (fclose(out) != 0 && rc == 0) rc = rc_error_set(&err, "write error");
  if (rc == 0 && rename(tmp, a->record_path) != 0)
    rc = rc_error_set(&err, "cannot rename %s: %s", tmp, strerror(errno));
  if (rc != 0) {
    unlink(tmp);
    fprintf(stderr, "mockhs: session not recorded: %s\n", err.msg);
    return -1;
  }
  printf("mockhs: session recorded in %s\n", a->record_path);
  return 0;
}

int mockhs_run_proxy(struct event_base *base, const mockhs_args_t *a) {
  const char *colon = strrchr(a->proxy_target, ':');
  char host[256];
  char *end = NULL;
  long port = colon ? strtol(colon + 1, &end, 10) : 0;
  if (colon == NULL || colon == a->proxy_target || end == colon + 1 || *end != '\0' || port < 1 ||
      port > 65535 || (size_t)(colon - a->proxy_target) >= sizeof host) {
    fprintf(stderr, "mockhs: --proxy expects HOST:PORT of the real main, got '%s'\n",
            a->proxy_target);
    return 2;
  }
  snprintf(host, sizeof host, "%.*s", (int)(colon - a->proxy_target), a->proxy_target);
  ledger_t *ledger = ledger_create(0);
  rc_error_t err;
  mock_proxy_t *proxy =
      ledger ? mock_proxy_create(base, a->port, host, (int)port, ledger, &err) : NULL;
  if (proxy == NULL) {
    fprintf(stderr, "mockhs: %s\n", ledger ? err.msg : "out of memory");
    ledger_destroy(ledger);
    return 1;
  }
  /* With --sessions N, the N-th worker connection is the last one recorded. */
  mock_proxy_set_max_sessions(proxy, a->sessions);
  struct event *sigint = evsignal_new(base, SIGINT, on_signal, NULL);
  struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
  event_add(sigint, NULL);
  event_add(sigterm, NULL);
  printf("mockhs: proxy listening on 127.0.0.1:%d, forwarding to the main at %s\n",
         mock_proxy_port(proxy), a->proxy_target);
  fflush(stdout);
  uint64_t next_seq = 1;
  while (!stop_requested && (a->sessions == 0 || mock_proxy_sessions_ended(proxy) < a->sessions)) {
    struct timeval tick = {0, 100000};
    event_base_loopexit(base, &tick);
    event_base_dispatch(base);
    mockhs_print_ledger(ledger, &next_seq);
  }
  mockhs_print_ledger(ledger, &next_seq);
  int status = 0;
  if (a->record_path != NULL && write_session(a, ledger, mock_proxy_sessions(proxy)) != 0)
    status = 1;
  event_free(sigint);
  event_free(sigterm);
  mock_proxy_destroy(proxy);
  ledger_destroy(ledger);
  return status;
}
