/* The behaviour suites' verdicts against a fake SUT: this test program, started again
 * by replcheck as `test_behaviour_fake --fake-sut MODE ...`, is a minimal worker (it
 * connects, says NAME and REPLICATE, and otherwise ignores the wire) with an HTTP
 * listener whose Server headers, metrics and log misbehave as MODE says. It shows that
 * the tests no seeded refworker bug can make fail (HT-02 values, HT-03 version, BG-09
 * stuck gauges) do fail, that BG-07's passive log check fires, and that tests needing
 * an undeclared profile feature are skipped with the reason. */
#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

/* ---------------------------------------------------------------------------------
 * The fake SUT */

typedef struct fake {
  const char *mode;
  FILE *log;
  struct event_base *base;
  struct bufferevent *repl;
  struct event *late_report;
  int rdata_seen;
} fake_t;

static void fake_log(fake_t *f, const char *level, const char *context, const char *message) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  fprintf(f->log, "%s,%03ld - fake.sut - 1 - %s - %s - %s\n", when, ts.tv_nsec / 1000000, level,
          context, message);
  fflush(f->log);
}

static bool mode_is(const fake_t *f, const char *mode) {
  return strcmp(f->mode, mode) == 0;
}

static void send_reply(fake_t *f, struct evhttp_request *req, int code, const char *body) {
  struct evkeyvalq *out = evhttp_request_get_output_headers(req);
  bool error = code != 200;
  if (mode_is(f, "no-header-on-errors") && error) {
    /* nothing */
  } else if (mode_is(f, "twisted-404") && code == 404) {
    evhttp_add_header(out, "Server", "TwistedWeb/18.9.0");
  } else if (mode_is(f, "varying") && error) {
    evhttp_add_header(out, "Server", "fake/1.2.4");
  } else {
    evhttp_add_header(out, "Server", "fake/1.2.3");
    if (mode_is(f, "duplicate") && code == 500) evhttp_add_header(out, "Server", "fake/1.2.3");
  }
  evhttp_add_header(out, "Content-Type", "application/json");
  struct evbuffer *buf = evbuffer_new();
  evbuffer_add(buf, body, strlen(body));
  evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", buf);
  evbuffer_free(buf);
}

static void on_http(struct evhttp_request *req, void *arg) {
  fake_t *f = arg;
  const char *path = evhttp_request_get_uri(req);
  if (evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Access-Control-Allow-Origin", "*");
    send_reply(f, req, 200, "{}");
  } else if (strcmp(path, "/metrics") == 0) {
    char body[512];
    snprintf(body, sizeof body,
             "# TYPE synapse_background_process_start_count counter\n"
             "synapse_background_process_start_count_total{name=\"process-replication-data\"} %d\n"
             "# TYPE synapse_background_process_in_flight_count gauge\n"
             "synapse_background_process_in_flight_count{name=\"process-replication-data\"} %d\n",
             f->rdata_seen, mode_is(f, "stuck-in-flight") ? 1 : 0);
    send_reply(f, req, 200, body);
  } else if (strcmp(path, "/ok") == 0) {
    send_reply(f, req, 200, "{\"status\":\"ok\"}");
  } else if (strcmp(path, "/fail") == 0) {
    send_reply(f, req, 500, "{\"errcode\":\"M_UNKNOWN\"}");
  } else {
    send_reply(f, req, 404, "{\"errcode\":\"M_UNRECOGNIZED\"}");
  }
}

static void on_late_report(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  fake_log(arg, "CRITICAL", "sentinel", "Unhandled error in Deferred:");
}

static void on_repl_read(struct bufferevent *bev, void *arg) {
  fake_t *f = arg;
  char *line;
  size_t len;
  while ((line = evbuffer_readln(bufferevent_get_input(bev), &len, EVBUFFER_EOL_LF)) != NULL) {
    if (strncmp(line, "RDATA ", 6) == 0) {
      f->rdata_seen++;
      if (mode_is(f, "unhandled") && f->rdata_seen == 1) {
        struct timeval later = {0, 500000};
        evtimer_add(f->late_report, &later);
      }
    }
    free(line);
  }
}

static void on_repl_event(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  fake_t *f = arg;
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) event_base_loopexit(f->base, NULL);
}

static void on_signal(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  event_base_loopexit(arg, NULL);
}

/* argv: --fake-sut MODE REPL_PORT HTTP_PORT LOG */
static int fake_main(int argc, char **argv) {
  if (argc != 6) return 2;
  fake_t f = {.mode = argv[2]};
  f.log = fopen(argv[5], "a");
  f.base = event_base_new();
  if (f.log == NULL || f.base == NULL) return 1;
  fake_log(
      &f, "WARNING", "main",
      mode_is(&f, "version-mismatch") ? "Server fake version 9.9.9" : "Server fake version 1.2.3");
  struct evhttp *http = evhttp_new(f.base);
  evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_OPTIONS);
  evhttp_set_gencb(http, on_http, &f);
  if (evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)atoi(argv[4])) != 0) return 1;
  f.late_report = evtimer_new(f.base, on_late_report, &f);
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(argv[3])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  f.repl = bufferevent_socket_new(f.base, -1, BEV_OPT_CLOSE_ON_FREE);
  bufferevent_setcb(f.repl, on_repl_read, NULL, on_repl_event, &f);
  bufferevent_enable(f.repl, EV_READ | EV_WRITE);
  if (bufferevent_socket_connect(f.repl, (struct sockaddr *)&addr, sizeof addr) != 0) return 1;
  bufferevent_write(f.repl, "NAME fake\nREPLICATE\n", 20);
  struct event *term = evsignal_new(f.base, SIGTERM, on_signal, f.base);
  event_add(term, NULL);
  event_base_dispatch(f.base);
  event_free(term);
  event_free(f.late_report);
  bufferevent_free(f.repl);
  evhttp_free(http);
  event_base_free(f.base);
  fclose(f.log);
  return 0;
}

/* ---------------------------------------------------------------------------------
 * Running replcheck against it */

static char self_path[4096];
static char *work;

static void setup(void) {
  work = test_make_temp_dir("replcheck-fake");
}
static void teardown(void) {
  test_remove_tree(work);
  free(work);
}

/* A profile for the fake in MODE; `sections` adds "http"/"metrics" members. */
static char *fake_profile(const char *mode, const char *sections) {
  char json[8192], name[64];
  snprintf(json, sizeof json,
           "{\"format\": 1, \"name\": \"fake %s\", \"dialect\": \"modern\", \"era\": \"1.66\",\n"
           " \"command\": [\"%s\", \"--fake-sut\", \"%s\", \"{repl_port}\", \"{sut_http_port}\", "
           "\"{log_path}\"],\n"
           " \"log\": {\"path\": \"{log_path}\"}%s%s,\n"
           " \"timing\": {\"ping_interval_ms\": 250, \"ping_timeout_ms\": 1250, "
           "\"reconnect_initial_ms\": 50, \"reconnect_max_ms\": 250, \"startup_timeout_ms\": 5000, "
           "\"shutdown_grace_ms\": 2000}}\n",
           mode, self_path, mode, sections[0] ? ",\n " : "", sections);
  snprintf(name, sizeof name, "%s.json", mode);
  char *path = test_path(work, name);
  ck_assert_int_eq(test_write_file(path, json, strlen(json)), 0);
  return path;
}

static const char *ALL_SECTIONS =
    "\"http\": {\"url\": \"http://127.0.0.1:{sut_http_port}\", \"paths\": [\"/ok\", \"/fail\"], "
    "\"server_header_regex\": \"^fake/[0-9.]+$\"},\n"
    " \"metrics\": {\"url\": \"http://127.0.0.1:{sut_http_port}/metrics\"}";

/* Runs replcheck over `tests` and returns the JSON report. */
static json_t *run(const char *profile, const char *tests) {
  char cmd[16384];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && TMPDIR='%s' '%s/replcheck' run --profile '%s' --jobs 2 --progress plain "
           "--json report.json --junit report.xml %s > out.txt 2>&1",
           work, work, test_env("REPLCHECK_BIN_DIR"), profile, tests);
  int rc = test_run(cmd);
  char *out_path = test_path(work, "out.txt");
  char *out = test_read_file(out_path, NULL);
  ck_assert_msg(rc == 0 || rc == 1, "replcheck exit %d:\n%s", rc, out ? out : "");
  char *json_path = test_path(work, "report.json");
  json_error_t jerr;
  json_t *doc = json_load_file(json_path, 0, &jerr);
  ck_assert_msg(doc != NULL, "no JSON report: %s\n%s", jerr.text, out ? out : "");
  free(out);
  free(out_path);
  free(json_path);
  return doc;
}

/* Asserts the verdict of a test and that its message contains fragment (may be NULL). */
static void expect(json_t *doc, const char *id, const char *verdict, const char *fragment) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(doc, "cases"), i, c) {
    if (strcmp(json_string_value(json_object_get(c, "id")), id) != 0) continue;
    const char *v = json_string_value(json_object_get(c, "verdict"));
    const char *m = json_string_value(json_object_get(c, "message"));
    const char *e = json_string_value(json_object_get(c, "evidence"));
    ck_assert_msg(strcmp(v, verdict) == 0, "%s: expected %s, got %s: %s\n%s", id, verdict, v,
                  m ? m : "", e ? e : "");
    if (fragment != NULL)
      ck_assert_msg(m != NULL && strstr(m, fragment) != NULL, "%s: message lacks '%s': %s", id,
                    fragment, m ? m : "(none)");
    return;
  }
  ck_abort_msg("%s is not in the report", id);
}

#define HTTP_TESTS \
  "http/server-header/present http/server-header/consistent http/server-header/version"

START_TEST(test_well_behaved) {
  char *p = fake_profile("ok", ALL_SECTIONS);
  json_t *doc = run(p, HTTP_TESTS " background/in-flight/idle");
  expect(doc, "http/server-header/present", "PASS", NULL);
  expect(doc, "http/server-header/consistent", "PASS", NULL);
  expect(doc, "http/server-header/version", "PASS", NULL);
  expect(doc, "background/in-flight/idle", "PASS", NULL);
  json_decref(doc);
  free(p);
}
END_TEST

typedef struct header_case {
  const char *mode;
  const char *present, *present_msg;
  const char *consistent, *consistent_msg;
  const char *version, *version_msg;
} header_case_t;

static const header_case_t HEADER_CASES[] = {
    {"no-header-on-errors", "FAIL", "GET /fail (500) has no Server header", "PASS", NULL, "PASS",
     NULL},
    {"duplicate", "FAIL", "GET /fail (500) has 2 Server headers", "PASS", NULL, "PASS", NULL},
    {"twisted-404", "PASS", NULL, "FAIL", "carries 'Server: TwistedWeb/18.9.0'", "PASS", NULL},
    {"varying", "PASS", NULL, "FAIL",
     "'fake/1.2.3' on GET /ok (200) but 'fake/1.2.4' on GET /fail (500)", "PASS", NULL},
    {"version-mismatch", "PASS", NULL, "PASS", NULL, "NON_STRICT",
     "the header says 'fake/1.2.3' (version '1.2.3') but the log says '9.9.9'"},
};

START_TEST(test_server_header_faults) {
  const header_case_t *c = &HEADER_CASES[_i];
  char *p = fake_profile(c->mode, ALL_SECTIONS);
  json_t *doc = run(p, HTTP_TESTS);
  expect(doc, "http/server-header/present", c->present, c->present_msg);
  expect(doc, "http/server-header/consistent", c->consistent, c->consistent_msg);
  expect(doc, "http/server-header/version", c->version, c->version_msg);
  json_decref(doc);
  free(p);
}
END_TEST

START_TEST(test_stuck_in_flight) {
  char *p = fake_profile("stuck-in-flight", ALL_SECTIONS);
  json_t *doc = run(p, "background/in-flight/idle");
  expect(doc, "background/in-flight/idle", "FAIL", "process-replication-data=1");
  json_decref(doc);
  free(p);
}
END_TEST

/* The late CRITICAL report fails the test that provokes it and, through the passive
 * check, any other test during which it appears. */
START_TEST(test_unhandled_deferred) {
  char *p = fake_profile("unhandled", ALL_SECTIONS);
  json_t *doc = run(p, "background/handler-error/no-unhandled-deferred background/in-flight/idle");
  expect(doc, "background/handler-error/no-unhandled-deferred", "FAIL",
         "BG-07: the SUT logged Twisted's report of an unhandled failure");
  expect(doc, "background/in-flight/idle", "FAIL", "BG-07: the SUT logged Twisted's report");
  json_decref(doc);
  free(p);
}
END_TEST

/* Without http.url or metrics.url the tests that need them are skipped, saying why. */
START_TEST(test_undeclared_features_skip) {
  char *p = fake_profile("plain", "");
  json_t *doc = run(p, HTTP_TESTS " background/in-flight/idle cache/expiry/removed");
  expect(doc, "http/server-header/present", "SKIP", "the profile declares no http.url");
  expect(doc, "background/in-flight/idle", "SKIP", "the profile declares no metrics.url");
  expect(doc, "cache/expiry/removed", "SKIP",
         "needs role caches, which the profile does not declare");
  json_decref(doc);
  free(p);
}
END_TEST

static Suite *fake_suite(void) {
  Suite *s = suite_create("behaviour_fake");
  TCase *tc = tcase_create("fake");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_well_behaved);
  tcase_add_loop_test(tc, test_server_header_faults, 0,
                      (int)(sizeof HEADER_CASES / sizeof HEADER_CASES[0]));
  tcase_add_test(tc, test_stuck_in_flight);
  tcase_add_test(tc, test_unhandled_deferred);
  tcase_add_test(tc, test_undeclared_features_skip);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--fake-sut") == 0) return fake_main(argc, argv);
  ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
  if (n <= 0) return 1;
  self_path[n] = '\0';
  return test_run_suite(fake_suite());
}
