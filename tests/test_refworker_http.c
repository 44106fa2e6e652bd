/* Unit tests of refworker's HTTP listener (reference/http_server.c): a real evhttp server
 * on 127.0.0.1 (port 0, read back) driven by an event loop thread, probed with libcurl.
 *
 * HT-01/HT-02 (requirements.md §14, seed E, Synapse PR #3208): every response — a JSON
 * 200, a 404, a 500, an OPTIONS preflight, the metrics text — carries exactly one Server
 * header with the same value; with BUG_MISSING_SERVER_HEADER the error and OPTIONS
 * answers lack it while the 200s keep it. */
#include <check.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_server.h"
#include "metrics.h"
#include "rc_clock.h"
#include "test_support.h"
#include "wlog.h"

#define VERSION "9.8.7"

static struct event_base *base;
static metrics_t *metrics;
static http_server_t *server;
static pthread_t loop_thread;
static struct event *stopper;
static char *temp_dir;
static char *log_path;
static int cache_reads;

/* Two fixed caches: "device_updates" holds @u1:test, "empty" holds nothing. Runs on the
 * loop thread; the test thread reads cache_reads only after the response arrived. */
static const char *cache_get(void *arg, const char *cache, const char *key, bool *known) {
  (void)arg;
  __atomic_add_fetch(&cache_reads, 1, __ATOMIC_SEQ_CST);
  *known = strcmp(cache, "device_updates") == 0 || strcmp(cache, "empty") == 0;
  if (strcmp(cache, "device_updates") == 0 && strcmp(key, "@u1:test") == 0)
    return "[\"@u1:test\",false,false]";
  return NULL;
}

/* Runs on the loop thread. An activated event survives until the loop runs it, whereas
 * a loopbreak issued before dispatch has started would be forgotten. */
static void on_stop(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
  event_base_loopbreak(base);
}

static void *loop_main(void *arg) {
  (void)arg;
  event_base_dispatch(base);
  return NULL;
}

static void start_server(bug_set_t bugs) {
  temp_dir = test_make_temp_dir("test_refworker_http");
  log_path = test_path(temp_dir, "worker.log");
  rc_error_t err;
  ck_assert_msg(wlog_open(log_path, &err) == 0, "%s", err.msg);
  ck_assert_int_eq(evthread_use_pthreads(), 0);
  base = event_base_new();
  ck_assert_ptr_nonnull(base);
  metrics = metrics_create(METRICS_STYLE_2018, &err);
  static const char *const labels[] = {"name"};
  metrics_family_t *family =
      metrics_family_declare(metrics, "synapse_background_process_start_count", METRICS_COUNTER,
                             "Starts", labels, 1, &err);
  const char *values[] = {"replication-PING"};
  metrics_series_add(metrics_series_get(family, values, 1, &err), 4);
  http_server_config_t config = {
      .version = VERSION, .metrics = metrics, .cache_get = cache_get, .bugs = bugs};
  server = http_server_create(base, 0, &config, &err);
  ck_assert_msg(server != NULL, "%s", err.msg);
  ck_assert_int_gt(http_server_port(server), 0);
  ck_assert_str_eq(http_server_header_value(server), "refworker/" VERSION);
  stopper = event_new(base, -1, 0, on_stop, NULL);
  ck_assert_ptr_nonnull(stopper);
  ck_assert_int_eq(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
}

static void stop_server(void) {
  event_active(stopper, 0, 0);
  pthread_join(loop_thread, NULL);
  event_free(stopper);
  http_server_destroy(server);
  metrics_destroy(metrics);
  event_base_free(base);
  wlog_close();
  test_remove_tree(temp_dir);
  free(temp_dir);
  free(log_path);
  libevent_global_shutdown();
}

typedef struct response {
  long status;
  char headers[8192];
  size_t headers_len;
  char body[65536];
  size_t body_len;
} response_t;

static size_t on_header(char *data, size_t size, size_t count, void *arg) {
  response_t *r = arg;
  size_t n = size * count;
  if (r->headers_len + n < sizeof r->headers) {
    memcpy(r->headers + r->headers_len, data, n);
    r->headers_len += n;
    r->headers[r->headers_len] = '\0';
  }
  return n;
}

static size_t on_body(char *data, size_t size, size_t count, void *arg) {
  response_t *r = arg;
  size_t n = size * count;
  if (r->body_len + n < sizeof r->body) {
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
  }
  return n;
}

/* method "GET", "HEAD", "OPTIONS", "POST"; path starts with '/'. */
static void request(const char *method, const char *path, response_t *r) {
  memset(r, 0, sizeof *r);
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", http_server_port(server), path);
  CURL *curl = curl_easy_init();
  ck_assert_ptr_nonnull(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "POST") == 0)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "{}");
  else if (strcmp(method, "GET") != 0)
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  CURLcode rc = curl_easy_perform(curl);
  ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_cleanup(curl);
}

/* How many headers called `name` the response has; the last value goes to value. */
static int header_count(const response_t *r, const char *name, char *value, size_t cap) {
  int count = 0;
  size_t name_len = strlen(name);
  const char *p = r->headers;
  while (*p != '\0') {
    const char *eol = strstr(p, "\r\n");
    size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
    if (len > name_len && strncasecmp(p, name, name_len) == 0 && p[name_len] == ':') {
      count++;
      const char *v = p + name_len + 1;
      while (*v == ' ') v++;
      if (value != NULL) snprintf(value, cap, "%.*s", (int)(len - (size_t)(v - p)), v);
    }
    p += len + (eol != NULL ? 2 : 0);
  }
  return count;
}

static void expect_server_header(const response_t *r, const char *what, bool present) {
  char value[256] = "";
  int count = header_count(r, "Server", value, sizeof value);
  if (present)
    ck_assert_msg(count == 1 && strcmp(value, "refworker/" VERSION) == 0,
                  "HT-01/HT-02 (one Server header, the same on every response)\n"
                  "  Expected: one 'Server: refworker/" VERSION
                  "' on %s\n"
                  "  Actual: %d header(s), last '%s'\n%s",
                  what, count, value, r->headers);
  else
    ck_assert_msg(count == 0,
                  "missing-server-header (bug E) drops the header on %s\n"
                  "  Expected: no Server header\n  Actual: %d, '%s'",
                  what, count, value);
}

START_TEST(test_endpoints_and_server_header) {
  start_server(0);
  response_t r;
  request("GET", "/health", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
  expect_server_header(&r, "GET /health (200)", true);

  request("GET", "/metrics", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_msg(strstr(r.body,
                       "# TYPE synapse_background_process_start_count counter\n"
                       "synapse_background_process_start_count{name=\"replication-PING\"} "
                       "4.0\n") != NULL,
                "%s", r.body);
  char type[128];
  header_count(&r, "Content-Type", type, sizeof type);
  ck_assert_str_eq(type, "text/plain; version=0.0.4; charset=utf-8");
  expect_server_header(&r, "GET /metrics (200)", true);

  request("GET", "/_refworker/cache/device_updates/%40u1%3Atest", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_str_eq(r.body, "{\"value\": [\"@u1:test\",false,false]}");
  expect_server_header(&r, "a cache hit (200)", true);

  request("GET", "/_refworker/cache/device_updates/@u2:test", &r);
  ck_assert_int_eq(r.status, 404);
  ck_assert_str_eq(r.body,
                   "{\"errcode\":\"M_NOT_FOUND\",\"error\":\"Key not in cache device_updates\"}");
  expect_server_header(&r, "a cache miss (404)", true);

  request("GET", "/_refworker/cache/nosuch/@u1:test", &r);
  ck_assert_int_eq(r.status, 404);
  ck_assert_str_eq(r.body, "{\"errcode\":\"M_NOT_FOUND\",\"error\":\"No cache called nosuch\"}");
  ck_assert_int_eq(__atomic_load_n(&cache_reads, __ATOMIC_SEQ_CST), 3);

  request("GET", "/_refworker/fail", &r);
  ck_assert_int_eq(r.status, 500);
  ck_assert_str_eq(r.body, "{\"errcode\":\"M_UNKNOWN\",\"error\":\"deliberate failure\"}");
  expect_server_header(&r, "GET /_refworker/fail (500)", true);

  request("GET", "/no/such/path", &r);
  ck_assert_int_eq(r.status, 404);
  ck_assert_str_eq(r.body, "{\"errcode\":\"M_UNRECOGNIZED\",\"error\":\"Unrecognized request\"}");
  expect_server_header(&r, "an unknown path (404)", true);

  request("POST", "/health", &r);
  ck_assert_int_eq(r.status, 404);
  ck_assert_str_eq(r.body, "{\"errcode\":\"M_UNRECOGNIZED\",\"error\":\"Unrecognized request\"}");
  expect_server_header(&r, "POST /health (404)", true);

  request("OPTIONS", "/_matrix/client/r0/sync", &r);
  ck_assert_int_eq(r.status, 200);
  char origin[64] = "";
  ck_assert_int_eq(header_count(&r, "Access-Control-Allow-Origin", origin, sizeof origin), 1);
  ck_assert_str_eq(origin, "*");
  expect_server_header(&r, "an OPTIONS preflight", true);

  request("HEAD", "/health", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_uint_eq(r.body_len, 0);
  expect_server_header(&r, "HEAD /health", true);

  /* Each request is logged under its own request id, GET-<seq> style. */
  char *log = test_read_file(log_path, NULL);
  ck_assert_ptr_nonnull(log);
  ck_assert_msg(strstr(log, " - INFO - GET-0 - 127.0.0.1 - ") != NULL &&
                    strstr(log, "200 \"GET '/health' HTTP/1.1\"") != NULL &&
                    strstr(log, " - OPTIONS-8 - ") != NULL,
                "access log:\n%s", log);
  free(log);
  stop_server();
}
END_TEST

START_TEST(test_bug_missing_server_header) {
  start_server(BUG_MISSING_SERVER_HEADER);
  response_t r;
  request("GET", "/health", &r);
  ck_assert_int_eq(r.status, 200);
  expect_server_header(&r, "GET /health (200)", true);
  request("GET", "/metrics", &r);
  expect_server_header(&r, "GET /metrics (200)", true);
  request("GET", "/_refworker/cache/device_updates/@u1:test", &r);
  ck_assert_int_eq(r.status, 200);
  expect_server_header(&r, "a cache hit (200)", true);
  request("GET", "/no/such/path", &r);
  ck_assert_int_eq(r.status, 404);
  expect_server_header(&r, "an unknown path (404)", false);
  request("GET", "/_refworker/fail", &r);
  ck_assert_int_eq(r.status, 500);
  expect_server_header(&r, "GET /_refworker/fail (500)", false);
  request("OPTIONS", "/health", &r);
  ck_assert_int_eq(r.status, 200);
  expect_server_header(&r, "an OPTIONS preflight", false);
  stop_server();
}
END_TEST

START_TEST(test_port_in_use_is_an_error) {
  start_server(0);
  rc_error_t err;
  struct event_base *other = event_base_new();
  http_server_config_t config = {.version = VERSION, .metrics = metrics};
  http_server_t *second = http_server_create(other, http_server_port(server), &config, &err);
  ck_assert_ptr_null(second);
  ck_assert_msg(strstr(err.msg, "cannot listen on 127.0.0.1:") != NULL, "%s", err.msg);
  ck_assert_ptr_null(http_server_create(other, 70000, &config, &err));
  ck_assert_msg(strstr(err.msg, "70000 is not a TCP port") != NULL, "%s", err.msg);
  event_base_free(other);
  stop_server();
}
END_TEST

static Suite *http_suite(void) {
  Suite *s = suite_create("refworker_http");
  TCase *tc = tcase_create("http_server");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_endpoints_and_server_header);
  tcase_add_test(tc, test_bug_missing_server_header);
  tcase_add_test(tc, test_port_in_use_is_an_error);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int status = test_run_suite(http_suite());
  curl_global_cleanup();
  return status;
}
