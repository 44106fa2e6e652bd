/* Tests of harness/http_probe.c against real local HTTP servers: an evhttp server on
 * its own thread (statuses, methods, repeated and mixed-case headers, big bodies, a
 * request that is never answered, metrics) and a raw socket server for responses evhttp
 * cannot produce (folded headers, interim 100 responses, a close without a response).
 * Contract: harness/http_probe.h. */
#include <check.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_probe.h"
#include "rc_clock.h"
#include "rc_net.h"
#include "test_support.h"

#define BIG_BODY (5u * 1024u * 1024u)

/* ---------------------------------------------------------------------------------
 * evhttp server on a thread */

static struct event_base *server_base;
static struct evhttp *server_http;
static pthread_t server_thread;
static int server_port;

static const char *method_name(enum evhttp_cmd_type cmd) {
  switch (cmd) {
    case EVHTTP_REQ_GET:
      return "GET";
    case EVHTTP_REQ_POST:
      return "POST";
    case EVHTTP_REQ_HEAD:
      return "HEAD";
    case EVHTTP_REQ_PUT:
      return "PUT";
    case EVHTTP_REQ_DELETE:
      return "DELETE";
    case EVHTTP_REQ_OPTIONS:
      return "OPTIONS";
    default:
      return "OTHER";
  }
}

static void reply(struct evhttp_request *req, int code, const char *body) {
  struct evbuffer *buf = evbuffer_new();
  evbuffer_add(buf, body, strlen(body));
  evhttp_send_reply(req, code, code == 200 ? "OK" : "Status", buf);
  evbuffer_free(buf);
}

static void answer_delayed(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  reply(arg, 200, "late");
}

static void handle(struct evhttp_request *req, void *arg) {
  (void)arg;
  const char *path = evhttp_request_get_uri(req);
  struct evkeyvalq *out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "Server", "testsrv/1.0");
  if (strcmp(path, "/json") == 0) {
    evhttp_add_header(out, "Content-Type", "application/json");
    evhttp_add_header(out, "X-Multi", "first");
    evhttp_add_header(out, "x-multi", "second");
    evhttp_add_header(out, "x-MiXeD-cAsE", "  padded value  ");
    evhttp_add_header(out, "X-Empty", "");
    reply(req, 200, "{\"ok\":true}");
  } else if (strcmp(path, "/fail") == 0) {
    reply(req, 500, "{\"errcode\":\"M_UNKNOWN\"}");
  } else if (strcmp(path, "/method") == 0) {
    reply(req, 200, method_name(evhttp_request_get_command(req)));
  } else if (strcmp(path, "/echo-header") == 0) {
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Probe");
    reply(req, 200, v ? v : "(none)");
  } else if (strcmp(path, "/big") == 0) {
    char *body = malloc(BIG_BODY + 1);
    memset(body, 'b', BIG_BODY);
    body[BIG_BODY] = '\0';
    reply(req, 200, body);
    free(body);
  } else if (strcmp(path, "/delayed") == 0) {
    /* Answered 300 ms later, from the server's loop. */
    struct timeval tv = {0, 300 * 1000};
    event_base_once(server_base, -1, EV_TIMEOUT, answer_delayed, req, &tv);
  } else if (strcmp(path, "/slow") == 0) {
    /* Never answered: evhttp frees the request when the client goes away. */
  } else if (strcmp(path, "/many-headers") == 0) {
    for (int i = 0; i < HTTP_PROBE_MAX_HEADERS + 10; i++) {
      char name[32];
      snprintf(name, sizeof name, "X-H%d", i);
      evhttp_add_header(out, name, "v");
    }
    reply(req, 200, "");
  } else if (strcmp(path, "/metrics") == 0) {
    reply(req, 200,
          "# TYPE synapse_background_process_start_count counter\n"
          "synapse_background_process_start_count_total{name=\"prune_cache_c\"} 3.0\n");
  } else if (strcmp(path, "/bad-metrics") == 0) {
    reply(req, 200, "ok 1\nbroken{ 2\n");
  } else {
    reply(req, 404, "{\"errcode\":\"M_UNRECOGNIZED\"}");
  }
}

static void *server_main(void *arg) {
  (void)arg;
  event_base_dispatch(server_base);
  return NULL;
}

static void server_start(void) {
  ck_assert_int_eq(evthread_use_pthreads(), 0);
  server_base = event_base_new();
  server_http = evhttp_new(server_base);
  ck_assert_ptr_nonnull(server_http);
  evhttp_set_allowed_methods(server_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS);
  evhttp_set_gencb(server_http, handle, NULL);
  struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(server_http, "127.0.0.1", 0);
  ck_assert_ptr_nonnull(sock);
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  ck_assert_int_eq(getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&addr, &len),
                   0);
  server_port = ntohs(addr.sin_port);
  ck_assert_int_eq(pthread_create(&server_thread, NULL, server_main, NULL), 0);
}

static void server_stop(void) {
  event_base_loopexit(server_base, NULL);
  pthread_join(server_thread, NULL);
  evhttp_free(server_http);
  event_base_free(server_base);
}

static char *url(const char *path) {
  char *u = NULL;
  ck_assert_int_ge(asprintf(&u, "http://127.0.0.1:%d%s", server_port, path), 0);
  return u;
}

static http_response_t *probe_ok(const char *method, const char *path) {
  char *u = url(path);
  http_request_t req = {.method = method, .url = u, .timeout_ms = 3000};
  rc_error_t err = {{0}};
  http_response_t *r = http_probe(&req, &err);
  ck_assert_msg(r != NULL, "%s %s failed: %s", method ? method : "GET", u, err.msg);
  free(u);
  return r;
}

/* ---------------------------------------------------------------------------------
 * Tests against evhttp */

START_TEST(test_status_headers_body) {
  http_response_t *r = probe_ok(NULL, "/json");
  ck_assert_int_eq(r->status, 200);
  ck_assert_str_eq(r->body, "{\"ok\":true}");
  ck_assert_uint_eq(r->body_len, 11);
  ck_assert(!r->body_truncated);
  ck_assert_uint_eq(http_response_header_count(r, "server"), 1);
  ck_assert_str_eq(http_response_header(r, "SERVER", 0), "testsrv/1.0");
  ck_assert_uint_eq(http_response_header_count(r, "X-Multi"), 2);
  ck_assert_str_eq(http_response_header(r, "x-multi", 0), "first");
  ck_assert_str_eq(http_response_header(r, "X-MULTI", 1), "second");
  ck_assert_ptr_null(http_response_header(r, "x-multi", 2));
  ck_assert_str_eq(http_response_header(r, "X-Mixed-Case", 0), "padded value");
  ck_assert_str_eq(http_response_header(r, "x-empty", 0), "");
  ck_assert_uint_eq(http_response_header_count(r, "x-absent"), 0);
  ck_assert_ptr_null(http_response_header(r, "x-absent", 0));
  ck_assert(r->seconds >= 0 && r->seconds < 3);
  http_response_destroy(r);

  r = probe_ok("GET", "/fail");
  ck_assert_int_eq(r->status, 500);
  ck_assert_str_eq(r->body, "{\"errcode\":\"M_UNKNOWN\"}");
  http_response_destroy(r);
  r = probe_ok("GET", "/nowhere");
  ck_assert_int_eq(r->status, 404);
  ck_assert_str_eq(http_response_header(r, "Server", 0), "testsrv/1.0");
  http_response_destroy(r);
  http_response_destroy(NULL);
}
END_TEST

START_TEST(test_methods) {
  static const char *const methods[] = {"GET", "OPTIONS", "PUT", "DELETE", "POST"};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    http_response_t *r = probe_ok(methods[i], "/method");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, methods[i]);
    http_response_destroy(r);
  }
  http_response_t *r = probe_ok("HEAD", "/json");
  ck_assert_int_eq(r->status, 200);
  ck_assert_uint_eq(r->body_len, 0);
  ck_assert_str_eq(r->body, "");
  ck_assert_str_eq(http_response_header(r, "Server", 0), "testsrv/1.0");
  http_response_destroy(r);
}
END_TEST

START_TEST(test_extra_request_headers) {
  char *u = url("/echo-header");
  const char *const extra[] = {"X-Probe: hello there", "Origin: http://example.org", NULL};
  http_request_t req = {.url = u, .extra_headers = extra};
  rc_error_t err;
  http_response_t *r = http_probe(&req, &err);
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->body, "hello there");
  http_response_destroy(r);
  free(u);
}
END_TEST

START_TEST(test_body_truncated) {
  char *u = url("/big");
  http_request_t req = {.url = u, .timeout_ms = 5000};
  rc_error_t err = {{0}};
  http_response_t *r = http_probe(&req, &err);
  ck_assert_msg(r != NULL, "%s", err.msg);
  ck_assert_int_eq(r->status, 200);
  ck_assert(r->body_truncated);
  ck_assert_uint_eq(r->body_len, HTTP_PROBE_DEFAULT_MAX_BODY);
  ck_assert_uint_eq(strlen(r->body), HTTP_PROBE_DEFAULT_MAX_BODY);
  http_response_destroy(r);
  req.max_body = 10;
  r = http_probe(&req, &err);
  ck_assert_ptr_nonnull(r);
  ck_assert(r->body_truncated);
  ck_assert_str_eq(r->body, "bbbbbbbbbb");
  http_response_destroy(r);
  /* A body of exactly max_body bytes is complete. */
  free(u);
  u = url("/json");
  req.url = u;
  req.max_body = 11;
  r = http_probe(&req, &err);
  ck_assert_ptr_nonnull(r);
  ck_assert(!r->body_truncated);
  ck_assert_uint_eq(r->body_len, 11);
  http_response_destroy(r);
  free(u);
}
END_TEST

START_TEST(test_timeout) {
  char *u = url("/slow");
  http_request_t req = {.url = u, .timeout_ms = 300};
  rc_error_t err = {{0}};
  int64_t start = rc_clock_mono_ms();
  http_response_t *r = http_probe(&req, &err);
  int64_t took = rc_clock_mono_ms() - start;
  ck_assert_ptr_null(r);
  ck_assert_msg(took >= 250 && took < 2000, "took %lld ms", (long long)took);
  char want[256];
  snprintf(want, sizeof want, "GET %s: no complete response within 300 ms", u);
  ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "got: %s", err.msg);
  free(u);
}
END_TEST

START_TEST(test_too_many_headers) {
  char *u = url("/many-headers");
  http_request_t req = {.url = u};
  rc_error_t err = {{0}};
  ck_assert_ptr_null(http_probe(&req, &err));
  char want[256];
  snprintf(want, sizeof want, "GET %s: more than %d response headers", u, HTTP_PROBE_MAX_HEADERS);
  ck_assert_str_eq(err.msg, want);
  free(u);
}
END_TEST

START_TEST(test_metrics_scrape) {
  char *u = url("/metrics");
  rc_error_t err = {{0}};
  prom_t *p = http_probe_metrics(u, 2000, &err);
  ck_assert_msg(p != NULL, "%s", err.msg);
  prom_match_t m = {"name", "prune_cache_c"};
  const prom_sample_t *s = prom_find(p, "synapse_background_process_start_count", &m, 1);
  ck_assert_ptr_nonnull(s);
  ck_assert(s->value == 3.0);
  prom_destroy(p);
  free(u);

  u = url("/bad-metrics");
  ck_assert_ptr_null(http_probe_metrics(u, 2000, &err));
  char want[256];
  snprintf(want, sizeof want, "metrics at %s: line 2, column 9: expected a label name or '}'", u);
  ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "got: %s", err.msg);
  free(u);

  u = url("/nowhere");
  ck_assert_ptr_null(http_probe_metrics(u, 2000, &err));
  snprintf(want, sizeof want, "metrics at %s: HTTP status 404, expected 200", u);
  ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "got: %s", err.msg);
  free(u);
}
END_TEST

/* ---------------------------------------------------------------------------------
 * On an event loop (http_probe_start) */

static void count_tick(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (*(int *)arg)++;
}

/* Runs base until probe is done or deadline_ms passed; returns the ticks a 20 ms timer
 * on the same loop counted meanwhile. */
static int run_until_done(struct event_base *base, http_probe_async_t *probe, int deadline_ms) {
  int ticks = 0;
  struct event *tick = event_new(base, -1, EV_PERSIST, count_tick, &ticks);
  struct timeval tv = {0, 20 * 1000};
  event_add(tick, &tv);
  int64_t end = rc_clock_mono_ms() + deadline_ms;
  while (!http_probe_async_done(probe) && rc_clock_mono_ms() < end)
    event_base_loop(base, EVLOOP_ONCE);
  event_free(tick);
  return ticks;
}

/* The loop keeps running while the request waits for its answer, and the answer is the
 * one http_probe would give. */
START_TEST(test_async_runs_beside_the_loop) {
  struct event_base *base = event_base_new();
  char *u = url("/delayed");
  const char *headers[] = {"X-Probe: async", NULL};
  http_request_t req = {.url = u, .timeout_ms = 3000, .extra_headers = headers};
  rc_error_t err = {{0}};
  http_probe_async_t *p = http_probe_start(base, &req, &err);
  ck_assert_msg(p != NULL, "%s", err.msg);
  free(u); /* the request's strings are copied */
  ck_assert(!http_probe_async_done(p));
  ck_assert_ptr_null(http_probe_async_take(p, &err));
  ck_assert_msg(strstr(err.msg, "still running") != NULL, "got: %s", err.msg);
  int ticks = run_until_done(base, p, 3000);
  ck_assert(http_probe_async_done(p));
  ck_assert_msg(ticks >= 5, "the loop ran only %d ticks of 20 ms during a 300 ms request", ticks);
  http_response_t *r = http_probe_async_take(p, &err);
  ck_assert_msg(r != NULL, "%s", err.msg);
  ck_assert_int_eq(r->status, 200);
  ck_assert_str_eq(r->body, "late");
  ck_assert_str_eq(http_response_header(r, "server", 0), "testsrv/1.0");
  http_response_destroy(r);
  ck_assert_ptr_null(http_probe_async_take(p, &err));
  ck_assert_msg(strstr(err.msg, "already taken") != NULL, "got: %s", err.msg);
  http_probe_async_destroy(p);
  event_base_free(base);
}
END_TEST

/* Failures read as http_probe words them; abandoning a running request is fine. */
START_TEST(test_async_failures) {
  struct event_base *base = event_base_new();
  rc_error_t err = {{0}};
  http_request_t bad = {.url = "ftp://127.0.0.1/x"};
  ck_assert_ptr_null(http_probe_start(base, &bad, &err));
  ck_assert_msg(strstr(err.msg, "expected an http:// or https:// URL") != NULL, "got: %s", err.msg);
  char *u = url("/slow");
  http_request_t slow = {.url = u, .timeout_ms = 300};
  http_probe_async_t *p = http_probe_start(base, &slow, &err);
  ck_assert_ptr_nonnull(p);
  run_until_done(base, p, 3000);
  ck_assert(http_probe_async_done(p));
  ck_assert_ptr_null(http_probe_async_take(p, &err));
  char want[256];
  snprintf(want, sizeof want, "GET %s: no complete response within 300 ms", u);
  ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "got: %s", err.msg);
  http_probe_async_destroy(p);
  slow.timeout_ms = 5000;
  p = http_probe_start(base, &slow, &err);
  ck_assert_ptr_nonnull(p);
  event_base_loop(base, EVLOOP_NONBLOCK);
  http_probe_async_destroy(p); /* still running: abandoned */
  free(u);
  event_base_free(base);
}
END_TEST

/* ---------------------------------------------------------------------------------
 * Errors without a server, and a raw server for odd responses */

START_TEST(test_connection_refused) {
  int port = rc_net_free_port();
  ck_assert_int_gt(port, 0);
  char u[64];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/metrics", port);
  http_request_t req = {.url = u, .timeout_ms = 2000};
  rc_error_t err = {{0}};
  ck_assert_ptr_null(http_probe(&req, &err));
  char want[128];
  snprintf(want, sizeof want, "GET %s: connection refused (nothing listens there)", u);
  ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "got: %s", err.msg);
  ck_assert_ptr_null(http_probe_metrics(u, 2000, &err));
  ck_assert_msg(strstr(err.msg, "connection refused") != NULL, "got: %s", err.msg);
}
END_TEST

START_TEST(test_bad_urls) {
  rc_error_t err = {{0}};
  http_request_t req = {.method = "OPTIONS", .url = "ftp://127.0.0.1/x"};
  ck_assert_ptr_null(http_probe(&req, &err));
  ck_assert_str_eq(err.msg, "OPTIONS ftp://127.0.0.1/x: expected an http:// or https:// URL");
  req.url = NULL;
  ck_assert_ptr_null(http_probe(&req, &err));
  ck_assert_str_eq(err.msg, "OPTIONS (no URL): expected an http:// or https:// URL");
  ck_assert_ptr_null(http_probe(NULL, &err));
  req.url = "http://127.0.0.1:notaport/x";
  ck_assert_ptr_null(http_probe(&req, &err));
  ck_assert_msg(strncmp(err.msg, "OPTIONS http://127.0.0.1:notaport/x: ", 37) == 0, "got: %s",
                err.msg);
}
END_TEST

typedef struct raw_server {
  int fd;
  int port;
  const char *response; /* sent after the request head; NULL = close at once */
  pthread_t thread;
} raw_server_t;

static void *raw_main(void *arg) {
  raw_server_t *s = arg;
  int c = accept(s->fd, NULL, NULL);
  if (c < 0) return NULL;
  char buf[4096];
  size_t got = 0;
  while (got < sizeof buf - 1) {
    ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    buf[got] = '\0';
    if (strstr(buf, "\r\n\r\n") != NULL) break;
  }
  if (s->response != NULL) {
    ssize_t w = write(c, s->response, strlen(s->response));
    (void)w;
  }
  close(c);
  return NULL;
}

static void raw_start(raw_server_t *s, const char *response) {
  s->response = response;
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(s->fd, (struct sockaddr *)&addr, sizeof addr), 0);
  ck_assert_int_eq(listen(s->fd, 1), 0);
  socklen_t len = sizeof addr;
  getsockname(s->fd, (struct sockaddr *)&addr, &len);
  s->port = ntohs(addr.sin_port);
  ck_assert_int_eq(pthread_create(&s->thread, NULL, raw_main, s), 0);
}

static void raw_stop(raw_server_t *s) {
  pthread_join(s->thread, NULL);
  close(s->fd);
}

static http_response_t *raw_probe(const char *response, rc_error_t *err) {
  raw_server_t s;
  raw_start(&s, response);
  char u[64];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/x", s.port);
  http_request_t req = {.url = u, .timeout_ms = 2000};
  http_response_t *r = http_probe(&req, err);
  raw_stop(&s);
  return r;
}

START_TEST(test_raw_responses) {
  rc_error_t err = {{0}};
  /* An interim 100 response's headers are not the final response's. */
  http_response_t *r = raw_probe(
      "HTTP/1.1 100 Continue\r\nServer: interim\r\n\r\n"
      "HTTP/1.1 404 Not Found\r\nServer: final/1\r\nX-Folded: one\r\n  two\r\n\tthree\r\n"
      "Server: second/2\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
      &err);
  ck_assert_msg(r != NULL, "%s", err.msg);
  ck_assert_int_eq(r->status, 404);
  ck_assert_uint_eq(http_response_header_count(r, "Server"), 2);
  ck_assert_str_eq(http_response_header(r, "Server", 0), "final/1");
  ck_assert_str_eq(http_response_header(r, "Server", 1), "second/2");
  ck_assert_str_eq(http_response_header(r, "X-Folded", 0), "one two three");
  ck_assert_str_eq(r->body, "no");
  http_response_destroy(r);

  /* Closing without a response is an error that says so. */
  ck_assert_ptr_null(raw_probe(NULL, &err));
  ck_assert_msg(strstr(err.msg, "closed the connection without sending a response") != NULL,
                "got: %s", err.msg);
}
END_TEST

static void setup(void) {
  server_start();
}
static void teardown(void) {
  server_stop();
}

static Suite *http_probe_suite(void) {
  Suite *s = suite_create("http_probe");
  TCase *tc = tcase_create("evhttp");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_status_headers_body);
  tcase_add_test(tc, test_methods);
  tcase_add_test(tc, test_extra_request_headers);
  tcase_add_test(tc, test_body_truncated);
  tcase_add_test(tc, test_timeout);
  tcase_add_test(tc, test_too_many_headers);
  tcase_add_test(tc, test_metrics_scrape);
  tcase_add_test(tc, test_async_runs_beside_the_loop);
  tcase_add_test(tc, test_async_failures);
  suite_add_tcase(s, tc);
  TCase *errors = tcase_create("errors");
  tcase_set_timeout(errors, 30);
  tcase_add_test(errors, test_connection_refused);
  tcase_add_test(errors, test_bad_urls);
  tcase_add_test(errors, test_raw_responses);
  suite_add_tcase(s, errors);
  return s;
}

int main(void) {
  return test_run_suite(http_probe_suite());
}
