/* Unit tests of refworker's federation sender (reference/fedsender.c): membership and
 * presence units fed in directly, fake remote servers as evhttp servers on the same
 * event loop (port 0, read back), real time with deadlines.
 *
 * Requirements PR-01..PR-07 (shared/spec/requirements.md §9, seed H, Synapse PR #2115):
 * one presence row per local user, destinations computed by the sender, one update per
 * destination, coalescing per destination, failures isolated; and the
 * presence-per-destination bug brings back one transaction per destination per member. */
#include <check.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "fedsender.h"
#include "rc_clock.h"
#include "test_support.h"
#include "wlog.h"

#define OURS "test.local"
#define REMOTES 3

typedef struct remote_server {
  const char *name;
  struct evhttp *http;
  int port;
  int status;       /* answered with */
  int64_t delay_ms; /* before answering */
  json_t *bodies;   /* every PUT body received, in order */
  char last_path[256];
} remote_server_t;

typedef struct held_reply {
  struct evhttp_request *req;
  int status;
  struct event *timer;
} held_reply_t;

static struct event_base *base;
static remote_server_t remotes[REMOTES] = {
    {.name = "r1.test"}, {.name = "r2.test"}, {.name = "rx.test"}};
static fedsender_t *sender;
static int64_t acked[16];
static size_t ack_count;
static char *temp_dir;
static char *log_path;

static void send_held(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  held_reply_t *held = arg;
  struct evbuffer *body = evbuffer_new();
  evbuffer_add_printf(body, "{\"pdus\":{}}");
  evhttp_send_reply(held->req, held->status, held->status == 200 ? "OK" : "Error", body);
  evbuffer_free(body);
  event_free(held->timer);
  free(held);
}

static void on_remote_request(struct evhttp_request *req, void *arg) {
  remote_server_t *remote = arg;
  snprintf(remote->last_path, sizeof remote->last_path, "%s", evhttp_request_get_uri(req));
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(in);
  json_t *body = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
  json_array_append_new(remote->bodies, body != NULL ? body : json_null());
  held_reply_t *held = calloc(1, sizeof *held);
  held->req = req;
  held->status = remote->status;
  held->timer = evtimer_new(base, send_held, held);
  struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)remote->delay_ms * 1000};
  evtimer_add(held->timer, &tv);
}

static void on_ack(void *arg, int64_t token) {
  (void)arg;
  if (ack_count < 16) acked[ack_count++] = token;
}

static void start(bug_set_t bugs) {
  temp_dir = test_make_temp_dir("test_refworker_fedsender");
  log_path = test_path(temp_dir, "worker.log");
  rc_error_t err;
  ck_assert(wlog_open(log_path, &err) == 0);
  base = event_base_new();
  fedsender_remote_t config_remotes[REMOTES];
  char urls[REMOTES][64];
  for (int i = 0; i < REMOTES; i++) {
    remote_server_t *r = &remotes[i];
    r->http = evhttp_new(base);
    evhttp_set_gencb(r->http, on_remote_request, r);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(r->http, "127.0.0.1", 0);
    ck_assert_ptr_nonnull(bound);
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&addr, &len);
    r->port = ntohs(addr.sin_port);
    r->status = 200;
    r->delay_ms = 0;
    r->bodies = json_array();
    snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%d", r->port);
    config_remotes[i].name = (char *)r->name;
    config_remotes[i].url = urls[i];
  }
  fedsender_config_t config = {.server_name = OURS,
                               .remotes = config_remotes,
                               .remote_count = REMOTES,
                               .timeout_ms = 5000,
                               .bugs = bugs};
  sender = fedsender_create(base, &config, on_ack, NULL, &err);
  ck_assert_msg(sender != NULL, "%s", err.msg);
  ack_count = 0;
}

static void stop(void) {
  fedsender_destroy(sender);
  for (int i = 0; i < REMOTES; i++) {
    evhttp_free(remotes[i].http);
    json_decref(remotes[i].bodies);
  }
  event_base_free(base);
  wlog_close();
  test_remove_tree(temp_dir);
  free(temp_dir);
  free(log_path);
  libevent_global_shutdown();
}

static void run_for(int64_t ms) {
  struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
  event_base_loopexit(base, &tv);
  event_base_dispatch(base);
}

static void feed(const char *stream, int64_t token, const char *row) {
  const char *rows[] = {row};
  stream_unit_t unit = {
      .stream = stream, .instance = "", .token = token, .rows = rows, .row_count = 1};
  fedsender_on_unit(sender, &unit);
}

static void join(const char *room, const char *user, const char *membership, int64_t token) {
  char row[512];
  snprintf(row, sizeof row,
           "[\"ev\",[\"$e%lld\",\"%s\",\"m.room.member\",\"%s\",null,null,\"%s\",false,false]]",
           (long long)token, room, user, membership);
  feed("events", token, row);
}

static void presence(const char *user, const char *state, int64_t token) {
  char row[512];
  snprintf(row, sizeof row,
           "[\"p\",{\"user_id\":\"%s\",\"state\":\"%s\",\"last_active_ts\":%lld,"
           "\"last_federation_update_ts\":0,\"last_user_sync_ts\":0,\"status_msg\":null,"
           "\"currently_active\":true}]",
           user, state, (long long)rc_clock_wall_ms() - 1000);
  feed("federation", token, row);
}

static size_t received(int remote) {
  return json_array_size(remotes[remote].bodies);
}

/* The push entries of the n-th transaction a remote got. */
static json_t *push_of(int remote, size_t n) {
  json_t *body = json_array_get(remotes[remote].bodies, n);
  json_t *edus = json_object_get(body, "edus");
  return json_object_get(json_object_get(json_array_get(edus, 0), "content"), "push");
}

static void run_until_received(int remote, size_t count, int64_t ms) {
  int64_t deadline = rc_clock_mono_ms() + ms;
  while (received(remote) < count && rc_clock_mono_ms() < deadline) run_for(20);
}

/* PR-01, PR-02, PR-04: one update per member server, none elsewhere, Synapse's shape. */
START_TEST(test_one_update_per_destination) {
  start(0);
  join("!a:test.local", "@alice:test.local", "join", 1);
  join("!a:test.local", "@bob:r1.test", "join", 2);
  join("!a:test.local", "@carol:r1.test", "join", 3);
  join("!b:test.local", "@alice:test.local", "join", 4);
  join("!b:test.local", "@dan:r2.test", "join", 5);
  join("!c:test.local", "@eve:rx.test", "join", 6); /* alice is not in !c */
  presence("@alice:test.local", "online", 7);
  ck_assert_int_eq(ack_count, 1);
  ck_assert_int_eq(acked[0], 7);
  run_until_received(0, 1, 2000);
  run_until_received(1, 1, 2000);
  run_for(300);
  ck_assert_msg(received(0) == 1 && received(1) == 1 && received(2) == 0,
                "PR-01/PR-02\n  Expected: r1 1, r2 1, rx 0 transactions\n  Actual: %zu, %zu, %zu",
                received(0), received(1), received(2));
  json_t *body = json_array_get(remotes[0].bodies, 0);
  ck_assert_str_eq(json_string_value(json_object_get(body, "origin")), OURS);
  ck_assert(json_is_integer(json_object_get(body, "origin_server_ts")));
  ck_assert_uint_eq(json_array_size(json_object_get(body, "pdus")), 0);
  json_t *edu = json_array_get(json_object_get(body, "edus"), 0);
  ck_assert_str_eq(json_string_value(json_object_get(edu, "edu_type")), "m.presence");
  json_t *entry = json_array_get(push_of(0, 0), 0);
  ck_assert_str_eq(json_string_value(json_object_get(entry, "user_id")), "@alice:test.local");
  ck_assert_str_eq(json_string_value(json_object_get(entry, "presence")), "online");
  ck_assert(json_is_true(json_object_get(entry, "currently_active")));
  ck_assert(json_integer_value(json_object_get(entry, "last_active_ago")) >= 1000);
  ck_assert_ptr_null(json_object_get(entry, "status_msg"));
  ck_assert_msg(strncmp(remotes[0].last_path, "/_matrix/federation/v1/send/", 28) == 0, "%s",
                remotes[0].last_path);
  stop();
}
END_TEST

/* PR-03: other servers' users are ignored, the row is still acknowledged. */
START_TEST(test_remote_users_ignored) {
  start(0);
  join("!a:test.local", "@bob:r1.test", "join", 1);
  join("!a:test.local", "@carol:r2.test", "join", 2);
  presence("@bob:r1.test", "online", 3);
  ck_assert_int_eq(ack_count, 1);
  ck_assert_int_eq(acked[0], 3);
  run_for(400);
  ck_assert_uint_eq(received(0) + received(1) + received(2), 0);
  stop();
}
END_TEST

/* PR-05: updates queued while a transaction is in flight are coalesced per user. */
START_TEST(test_coalescing) {
  start(0);
  remotes[0].delay_ms = 500;
  join("!a:test.local", "@alice:test.local", "join", 1);
  join("!a:test.local", "@bob:r1.test", "join", 2);
  static const char *const states[] = {"online", "unavailable", "online", "offline", "unavailable"};
  for (int i = 0; i < 5; i++) presence("@alice:test.local", states[i], 3 + i);
  run_until_received(0, 2, 3000);
  run_for(700);
  ck_assert_msg(received(0) == 2, "PR-05: expected 2 transactions, got %zu", received(0));
  json_t *last = push_of(0, 1);
  ck_assert_uint_eq(json_array_size(last), 1);
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(last, 0), "presence")),
                   "unavailable");
  ck_assert_int_eq(ack_count, 5);
  stop();
}
END_TEST

/* PR-06, PR-07: membership changes apply to later rows; a failing server delays nobody. */
START_TEST(test_membership_changes_and_failures) {
  start(0);
  remotes[0].status = 500;
  join("!a:test.local", "@alice:test.local", "join", 1);
  join("!a:test.local", "@bob:r1.test", "join", 2);
  join("!a:test.local", "@dan:r2.test", "join", 3);
  presence("@alice:test.local", "online", 4);
  run_until_received(1, 1, 2000);
  run_until_received(0, 1, 2000);
  ck_assert_uint_eq(received(1), 1);
  join("!a:test.local", "@dan:r2.test", "leave", 5);
  join("!a:test.local", "@eve:rx.test", "join", 6);
  presence("@alice:test.local", "unavailable", 7);
  run_until_received(2, 1, 2000);
  run_for(300);
  ck_assert_msg(received(1) == 1 && received(2) == 1 && received(0) == 2,
                "PR-06/PR-07: r1 %zu (fails, still tried), r2 %zu (left), rx %zu (joined)",
                received(0), received(1), received(2));
  ck_assert_int_eq(fedsender_transactions_sent(sender), 4);
  stop();
}
END_TEST

/* Bug H: one transaction per destination per member. */
START_TEST(test_bug_presence_per_destination) {
  start(BUG_PRESENCE_PER_DESTINATION);
  join("!a:test.local", "@alice:test.local", "join", 1);
  join("!a:test.local", "@bob:r1.test", "join", 2);
  join("!a:test.local", "@carol:r1.test", "join", 3);
  join("!a:test.local", "@dan:r2.test", "join", 4);
  presence("@alice:test.local", "online", 5);
  run_until_received(0, 2, 2000);
  run_for(300);
  ck_assert_msg(received(0) == 2 && received(1) == 1,
                "bug H\n  Expected: r1 twice (two members), r2 once\n  Actual: %zu, %zu",
                received(0), received(1));
  stop();
}
END_TEST

/* A unit of federation rows, fed in directly. */
static void feed_unit(int64_t token, const char *const *rows, size_t count) {
  stream_unit_t unit = {
      .stream = "federation", .instance = "", .token = token, .rows = rows, .row_count = count};
  fedsender_on_unit(sender, &unit);
}

/* An "e" row for r1.test carrying {"seq": seq}; row must hold 256 bytes. */
static const char *edu_row(char *row, int seq) {
  snprintf(row, 256,
           "[\"e\",{\"origin\":\"" OURS "\",\"destination\":\"r1.test\","
           "\"edu_type\":\"org.test.probe\",\"content\":{\"seq\":%d}}]",
           seq);
  return row;
}

/* The seqs of the probe EDUs r1.test received, in arrival order, as "1,2,3". */
static const char *received_seqs(char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  json_t *body;
  size_t i;
  json_array_foreach(remotes[0].bodies, i, body) {
    json_t *edu;
    size_t k;
    json_array_foreach(json_object_get(body, "edus"), k, edu) {
      if (strcmp(json_string_value(json_object_get(edu, "edu_type")), "org.test.probe") != 0)
        continue;
      json_int_t seq = json_integer_value(json_object_get(json_object_get(edu, "content"), "seq"));
      int n = snprintf(buf + used, cap - used, "%s%lld", used ? "," : "", (long long)seq);
      if (n > 0 && (size_t)n < cap - used) used += (size_t)n;
    }
  }
  return buf;
}

/* RD-04: EDU rows reach their destination in row order, also when the first delivery is
 * slow and the later ones queue behind it; the newest-first bug reverses the queue. */
static void check_edu_order(bug_set_t bugs, const char *want) {
  start(bugs);
  remotes[0].delay_ms = 400;
  char row[256];
  for (int seq = 1; seq <= 4; seq++) {
    const char *rows[] = {edu_row(row, seq)};
    feed_unit(seq, rows, 1);
    if (seq == 1) {
      run_until_received(0, 1, 2000); /* the first is in flight, its answer held */
      remotes[0].delay_ms = 0;
    }
  }
  run_until_received(0, 2, 3000);
  run_for(200);
  char got[64];
  ck_assert_msg(strcmp(received_seqs(got, sizeof got), want) == 0,
                "RD-04\n  Expected: %s\n  Actual: %s", want, got);
  ck_assert_uint_eq(received(0), 2); /* 1, then 2..4 together */
  ck_assert_int_eq(ack_count, 4);
  ck_assert_int_eq(acked[3], 4);
  stop();
}

START_TEST(test_edu_rows_in_order) {
  check_edu_order(0, "1,2,3,4");
}
END_TEST

START_TEST(test_bug_edu_queue_newest_first) {
  check_edu_order(BUG_FEDERATION_QUEUE_NEWEST_FIRST, "1,4,3,2");
}
END_TEST

/* RD-10: a row of unknown type is logged and skipped, the rest of its unit processed and
 * the unit acknowledged; the abort bug loses the rest of the unit (still acknowledged). */
static void check_unknown_row(bug_set_t bugs, const char *want) {
  start(bugs);
  char row[256];
  const char *rows[] = {"[\"zz\",{}]", edu_row(row, 1)};
  feed_unit(9, rows, 2);
  ck_assert_int_eq(ack_count, 1);
  ck_assert_int_eq(acked[0], 9);
  run_until_received(0, 1, 1000);
  run_for(100);
  char got[64];
  ck_assert_msg(strcmp(received_seqs(got, sizeof got), want) == 0,
                "RD-10\n  Expected: %s\n  Actual: %s", want[0] ? want : "(none)",
                got[0] ? got : "(none)");
  char *log = test_read_file(log_path, NULL);
  ck_assert_msg(log != NULL && strstr(log, " - ERROR - ") != NULL &&
                    strstr(log, "Unrecognized federation row type 'zz'") != NULL,
                "the ERROR line is missing:\n%s", log ? log : "(no log)");
  free(log);
  stop();
}

START_TEST(test_unknown_row_skipped) {
  check_unknown_row(0, "1");
}
END_TEST

START_TEST(test_bug_unknown_row_aborts_unit) {
  check_unknown_row(BUG_FEDERATION_UNKNOWN_ROW_ABORTS, "");
}
END_TEST

START_TEST(test_remote_option) {
  fedsender_remote_t remote;
  rc_error_t err;
  ck_assert_int_eq(fedsender_parse_remote("r1.test=http://127.0.0.1:8448", &remote, &err), 0);
  ck_assert_str_eq(remote.name, "r1.test");
  ck_assert_str_eq(remote.url, "http://127.0.0.1:8448");
  fedsender_remote_free(&remote);
  ck_assert_int_eq(fedsender_parse_remote("r1.test", &remote, &err), -1);
  ck_assert_msg(strstr(err.msg, "expected NAME=URL") != NULL, "%s", err.msg);
  base = event_base_new();
  fedsender_remote_t bad = {.name = "r1.test", .url = "ftp://x"};
  fedsender_config_t config = {.server_name = OURS, .remotes = &bad, .remote_count = 1};
  ck_assert_ptr_null(fedsender_create(base, &config, NULL, NULL, &err));
  ck_assert_msg(strstr(err.msg, "expected http://host") != NULL, "%s", err.msg);
  event_base_free(base);
}
END_TEST

static Suite *fedsender_suite(void) {
  Suite *s = suite_create("refworker_fedsender");
  TCase *tc = tcase_create("fedsender");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_one_update_per_destination);
  tcase_add_test(tc, test_remote_users_ignored);
  tcase_add_test(tc, test_coalescing);
  tcase_add_test(tc, test_membership_changes_and_failures);
  tcase_add_test(tc, test_bug_presence_per_destination);
  tcase_add_test(tc, test_remote_option);
  tcase_add_test(tc, test_edu_rows_in_order);
  tcase_add_test(tc, test_bug_edu_queue_newest_first);
  tcase_add_test(tc, test_unknown_row_skipped);
  tcase_add_test(tc, test_bug_unknown_row_aborts_unit);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(fedsender_suite());
}
