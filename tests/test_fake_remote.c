/* Unit tests of the fake remote homeserver (mock_server/fake_remote.c) the presence suite
 * uses as federation destinations (requirements.md §9, PR-01..PR-07): a real evhttp
 * listener on 127.0.0.1 (port 0, read back), its event loop on a thread while libcurl
 * sends real requests. Between requests the loop is stopped, so the test thread may read
 * the records and change the answers.
 *
 * Checks: every request is recorded (method, path, transaction id, parsed body, arrival
 * time); 200 {"pdus":{}} by default, another status, a delay, refused connections and
 * listening again on the same port; the per-user presence query in arrival order; the
 * PR-04 form check; the evidence line. */
#include <check.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_remote.h"
#include "rc_clock.h"
#include "test_support.h"

static struct event_base *base;
static fake_remote_t *remote;
static pthread_t loop_thread;
static struct event *stopper;

static void on_stop(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
  event_base_loopbreak(base);
}

static void *loop_main(void *arg) {
  (void)arg;
  /* Runs until the stopper, even while a refusing remote has no listener. */
  event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
  return NULL;
}

static void setup(void) {
  ck_assert_int_eq(evthread_use_pthreads(), 0);
  base = event_base_new();
  ck_assert_ptr_nonnull(base);
  rc_error_t err;
  remote = fake_remote_create(base, "r1.test", &err);
  ck_assert_msg(remote != NULL, "%s", err.msg);
  ck_assert_int_gt(fake_remote_port(remote), 0);
  stopper = event_new(base, -1, 0, on_stop, NULL);
}

static void teardown(void) {
  event_free(stopper);
  fake_remote_destroy(remote);
  event_base_free(base);
  libevent_global_shutdown();
}

typedef struct reply {
  long status;
  char body[4096];
  size_t len;
  CURLcode rc;
  int64_t ms;
} reply_t;

static size_t on_body(char *data, size_t size, size_t count, void *arg) {
  reply_t *r = arg;
  size_t n = size * count;
  if (r->len + n < sizeof r->body) {
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
  }
  return n;
}

/* One real request while the remote's loop runs on its thread. */
static void perform(const char *method, const char *path, const char *body, reply_t *r) {
  memset(r, 0, sizeof *r);
  ck_assert_int_eq(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
  char url[256];
  snprintf(url, sizeof url, "%s%s", fake_remote_url(remote), path);
  CURL *curl = curl_easy_init();
  ck_assert_ptr_nonnull(curl);
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (body != NULL) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
  int64_t start = rc_clock_mono_ms();
  r->rc = curl_easy_perform(curl);
  r->ms = rc_clock_mono_ms() - start;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  event_active(stopper, 0, 0);
  pthread_join(loop_thread, NULL);
}

static void send_presence(const char *txn, const char *origin, const char *user, const char *state,
                          reply_t *r) {
  char path[128], body[512];
  snprintf(path, sizeof path, FAKE_REMOTE_SEND_PATH "%s", txn);
  snprintf(body, sizeof body,
           "{\"origin\":\"%s\",\"origin_server_ts\":1,\"pdus\":[],\"edus\":[{\"edu_type\":"
           "\"m.presence\",\"content\":{\"push\":[{\"user_id\":\"%s\",\"presence\":\"%s\"}]}}]}",
           origin, user, state);
  perform("PUT", path, body, r);
}

START_TEST(test_records_transactions) {
  reply_t r;
  int64_t before = rc_clock_mono_ms();
  send_presence("17", "hs.test", "@a:hs.test", "online", &r);
  ck_assert_int_eq(r.rc, CURLE_OK);
  ck_assert_int_eq(r.status, 200);
  ck_assert_str_eq(r.body, "{\"pdus\":{}}");
  ck_assert_uint_eq(fake_remote_request_count(remote), 1);
  const fake_remote_request_t *q = fake_remote_request(remote, 0);
  ck_assert_str_eq(q->method, "PUT");
  ck_assert_str_eq(q->path, FAKE_REMOTE_SEND_PATH "17");
  ck_assert_str_eq(q->txn_id, "17");
  ck_assert_int_eq(q->status, 200);
  ck_assert(q->mono_ms >= before && q->mono_ms <= rc_clock_mono_ms());
  ck_assert_str_eq(json_string_value(json_object_get(q->body, "origin")), "hs.test");
  ck_assert_ptr_null(fake_remote_request(remote, 1));
  char why[512];
  ck_assert(!fake_remote_form_problem(remote, "hs.test", why, sizeof why));
}
END_TEST

START_TEST(test_updates_per_user_in_order) {
  reply_t r;
  send_presence("1", "hs.test", "@a:hs.test", "online", &r);
  send_presence("2", "hs.test", "@b:hs.test", "offline", &r);
  send_presence("3", "hs.test", "@a:hs.test", "unavailable", &r);
  perform("GET", "/_matrix/key/v2/server", NULL, &r); /* recorded, not an update */
  ck_assert_uint_eq(fake_remote_request_count(remote), 4);
  ck_assert_ptr_null(fake_remote_request(remote, 3)->txn_id);
  fake_remote_update_t u[4];
  ck_assert_uint_eq(fake_remote_updates(remote, "@a:hs.test", u, 4), 2);
  ck_assert_str_eq(u[0].presence, "online");
  ck_assert_str_eq(u[1].presence, "unavailable");
  ck_assert_uint_eq(u[1].request, 2);
  ck_assert(u[0].mono_ms <= u[1].mono_ms);
  ck_assert_uint_eq(fake_remote_updates(remote, NULL, NULL, 0), 3);
  ck_assert_uint_eq(fake_remote_updates(remote, "@c:hs.test", NULL, 0), 0);
  char line[512];
  fake_remote_describe(remote, 2, line, sizeof line);
  ck_assert_str_eq(line,
                   "r1.test: 4 requests, 3 updates (@a:hs.test online, @b:hs.test offline, ...)");
  /* The GET is not a federation transaction: PR-04's check names it. */
  char why[512];
  ck_assert(fake_remote_form_problem(remote, "hs.test", why, sizeof why));
  ck_assert_msg(strstr(why, "request 3 (GET /_matrix/key/v2/server) is not PUT") != NULL, "%s",
                why);
}
END_TEST

START_TEST(test_form_problems) {
  reply_t r;
  char why[512];
  send_presence("1", "other.test", "@a:hs.test", "online", &r);
  ck_assert(fake_remote_form_problem(remote, "hs.test", why, sizeof why));
  ck_assert_msg(strstr(why, "has an origin other than the SUT's server name") != NULL, "%s", why);
  ck_assert(!fake_remote_form_problem(remote, "other.test", why, sizeof why));
  perform("PUT", FAKE_REMOTE_SEND_PATH "2",
          "{\"origin\":\"other.test\",\"edus\":[{\"edu_type\":\"m.typing\",\"content\":{}}]}", &r);
  ck_assert(fake_remote_form_problem(remote, "other.test", why, sizeof why));
  ck_assert_msg(strstr(why, "not m.presence") != NULL, "%s", why);
  perform("PUT", FAKE_REMOTE_SEND_PATH "3", "not json", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_ptr_null(fake_remote_request(remote, 2)->body);
}
END_TEST

START_TEST(test_status_and_delay) {
  reply_t r;
  fake_remote_set_reply(remote, 500, 300);
  send_presence("9", "hs.test", "@a:hs.test", "online", &r);
  ck_assert_int_eq(r.rc, CURLE_OK);
  ck_assert_int_eq(r.status, 500);
  ck_assert_msg(r.ms >= 290, "answered after %lld ms, not the 300 ms delay", (long long)r.ms);
  ck_assert_int_eq(fake_remote_request(remote, 0)->status, 500);
  /* The request is recorded on arrival, not when answered. */
  ck_assert_uint_eq(fake_remote_updates(remote, "@a:hs.test", NULL, 0), 1);
  fake_remote_set_reply(remote, 200, 0);
  send_presence("10", "hs.test", "@a:hs.test", "online", &r);
  ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(test_refusing) {
  reply_t r;
  rc_error_t err;
  int port = fake_remote_port(remote);
  ck_assert_int_eq(fake_remote_set_refusing(remote, true, &err), 0);
  send_presence("1", "hs.test", "@a:hs.test", "online", &r);
  ck_assert_int_eq(r.rc, CURLE_COULDNT_CONNECT);
  ck_assert_uint_eq(fake_remote_request_count(remote), 0);
  ck_assert_msg(fake_remote_set_refusing(remote, false, &err) == 0, "%s", err.msg);
  ck_assert_int_eq(fake_remote_port(remote), port);
  send_presence("2", "hs.test", "@a:hs.test", "online", &r);
  ck_assert_int_eq(r.rc, CURLE_OK);
  ck_assert_uint_eq(fake_remote_request_count(remote), 1);
}
END_TEST

static Suite *fake_remote_suite(void) {
  Suite *s = suite_create("fake_remote");
  TCase *tc = tcase_create("http");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_records_transactions);
  tcase_add_test(tc, test_updates_per_user_in_order);
  tcase_add_test(tc, test_form_problems);
  tcase_add_test(tc, test_status_and_delay);
  tcase_add_test(tc, test_refusing);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(fake_remote_suite());
}
