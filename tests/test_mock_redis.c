/* The mock homeserver over a real redis-server: what another process publishes shows
 * in the ledger on the right channel's pseudo-connection, the mock's own publishes are
 * not mistaken for the SUT's, REPLICATE is answered with POSITIONs, and the mock comes
 * back after a redis-server restart. */
#include <check.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mockhs.h"
#include "rc_clock.h"
#include "redis_server.h"
#include "test_support.h"

typedef struct fixture {
  char *dir;
  redis_server_t *redis;
  struct event_base *base;
  mockhs_t *mock;
  redisContext *client; /* plays the SUT */
} fixture_t;

static void fixture_open(fixture_t *f) {
  rc_error_t err;
  f->dir = test_make_temp_dir("replcheck-mock-redis");
  f->redis = redis_server_start(f->dir, 5000, &err);
  ck_assert_msg(f->redis != NULL, "%s", err.msg);
  f->base = event_base_new();
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, PROTO_DIALECT_MODERN, "test.local");
  cfg.redis_host = "127.0.0.1";
  cfg.redis_port = redis_server_port(f->redis);
  f->mock = mockhs_create(f->base, &cfg, &err);
  ck_assert_msg(f->mock != NULL, "%s", err.msg);
  ck_assert_msg(mockhs_transport_ready(f->mock, 5000, &err), "%s", err.msg);
  struct timeval tv = {2, 0};
  f->client = redisConnectWithTimeout("127.0.0.1", redis_server_port(f->redis), tv);
  ck_assert(f->client != NULL && !f->client->err);
}

static void fixture_close(fixture_t *f) {
  if (f->client != NULL) redisFree(f->client);
  mockhs_destroy(f->mock);
  event_base_free(f->base);
  redis_server_stop(f->redis);
  test_remove_tree(f->dir);
  free(f->dir);
}

static void publish(fixture_t *f, const char *channel, const char *line) {
  redisReply *r = redisCommand(f->client, "PUBLISH %s %s", channel, line);
  ck_assert_ptr_nonnull(r);
  freeReplyObject(r);
}

typedef struct text_match {
  ledger_side_t side;
  const char *text;
} text_match_t;

static bool line_is(const ledger_entry_t *e, void *arg) {
  const text_match_t *m = arg;
  return e->kind == LEDGER_LINE && e->side == m->side && strcmp(e->text, m->text) == 0;
}

START_TEST(sut_messages_are_recorded_per_channel) {
  fixture_t f;
  fixture_open(&f);
  publish(&f, "test.local", "REPLICATE ");
  text_match_t want = {LEDGER_SIDE_SUT, "REPLICATE "};
  const ledger_entry_t *e = mockhs_wait_for(f.mock, 1, line_is, &want, 2000);
  ck_assert_ptr_nonnull(e);
  int main_conn = e->conn_id;
  /* Answered like a real main: its POSITIONs, published on the channel. */
  text_match_t pos = {LEDGER_SIDE_MOCK, "POSITION events master 1 1"};
  ck_assert_ptr_nonnull(mockhs_wait_for(f.mock, e->seq, line_is, &pos, 2000));
  publish(&f, "test.local/USER_IP", "USER_IP @a:hs [\"t\",\"1.2.3.4\",\"ua\",\"D\",1]");
  text_match_t ip = {LEDGER_SIDE_SUT, "USER_IP @a:hs [\"t\",\"1.2.3.4\",\"ua\",\"D\",1]"};
  const ledger_entry_t *u = mockhs_wait_for(f.mock, 1, line_is, &ip, 2000);
  ck_assert_ptr_nonnull(u);
  ck_assert_int_ne(u->conn_id, main_conn);
  /* Other channels are none of the mock's business. */
  publish(&f, "other.server", "REPLICATE ");
  mockhs_run_for(f.mock, 200);
  ledger_t *ledger = mockhs_ledger(f.mock);
  int sut_replicates = 0;
  for (uint64_t s = ledger_first_seq(ledger); s < ledger_next_seq(ledger); s++) {
    const ledger_entry_t *x = ledger_get(ledger, s);
    if (x->kind == LEDGER_LINE && x->side == LEDGER_SIDE_SUT && strcmp(x->text, "REPLICATE ") == 0)
      sut_replicates++;
  }
  ck_assert_int_eq(sut_replicates, 1);
  fixture_close(&f);
}
END_TEST

START_TEST(own_publishes_are_not_taken_for_the_sut) {
  fixture_t f;
  fixture_open(&f);
  publish(&f, "test.local", "REPLICATE ");
  text_match_t want = {LEDGER_SIDE_SUT, "REPLICATE "};
  const ledger_entry_t *e = mockhs_wait_for(f.mock, 1, line_is, &want, 2000);
  ck_assert_ptr_nonnull(e);
  /* The SUT also hears the mock: subscribe and read what the mock publishes. */
  redisContext *sub = redisConnect("127.0.0.1", redis_server_port(f.redis));
  redisReply *r = redisCommand(sub, "SUBSCRIBE test.local");
  freeReplyObject(r);
  const char *rdata = "RDATA typing master 5 [\"!r\",[]]";
  ck_assert_int_eq(mockhs_send_line(f.mock, e->conn_id, rdata, strlen(rdata)), 0);
  mockhs_run_for(f.mock, 300);
  struct timeval tv = {2, 0};
  redisSetTimeout(sub, tv);
  /* The mock's answers to REPLICATE may come first; the RDATA must follow. */
  bool seen = false;
  for (int i = 0; i < 32 && !seen; i++) {
    void *reply_ptr = NULL;
    ck_assert_int_eq(redisGetReply(sub, &reply_ptr), REDIS_OK);
    redisReply *msg = reply_ptr;
    seen = strcmp(msg->element[2]->str, "RDATA typing master 5 [\"!r\",[]]") == 0;
    freeReplyObject(msg);
  }
  ck_assert_msg(seen, "the mock's RDATA never reached another subscriber");
  redisFree(sub);
  /* ...and that line appears once in the ledger, as the mock's. */
  ledger_t *ledger = mockhs_ledger(f.mock);
  int mock_lines = 0, sut_lines = 0;
  for (uint64_t s = ledger_first_seq(ledger); s < ledger_next_seq(ledger); s++) {
    const ledger_entry_t *x = ledger_get(ledger, s);
    if (x->kind != LEDGER_LINE || strncmp(x->text, "RDATA typing", 12) != 0) continue;
    if (x->side == LEDGER_SIDE_MOCK) mock_lines++;
    else sut_lines++;
  }
  ck_assert_int_eq(mock_lines, 1);
  ck_assert_int_eq(sut_lines, 0);
  fixture_close(&f);
}
END_TEST

START_TEST(mock_comes_back_after_a_restart) {
  fixture_t f;
  fixture_open(&f);
  redis_server_kill(f.redis);
  mockhs_run_for(f.mock, 100);
  rc_error_t err;
  ck_assert_msg(redis_server_relaunch(f.redis, 5000, &err) == 0, "%s", err.msg);
  ck_assert_msg(mockhs_redis_reconnect(f.mock, 5000, &err) == 0, "%s", err.msg);
  redisFree(f.client);
  f.client = redisConnect("127.0.0.1", redis_server_port(f.redis));
  publish(&f, "test.local", "REPLICATE ");
  text_match_t want = {LEDGER_SIDE_SUT, "REPLICATE "};
  ck_assert_ptr_nonnull(mockhs_wait_for(f.mock, 1, line_is, &want, 2000));
  fixture_close(&f);
}
END_TEST

START_TEST(no_redis_is_a_clear_error) {
  struct event_base *base = event_base_new();
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, PROTO_DIALECT_MODERN, "test.local");
  cfg.redis_host = "127.0.0.1";
  cfg.redis_port = 1; /* nothing listens there */
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  if (mock != NULL) {
    ck_assert(!mockhs_transport_ready(mock, 2000, &err));
    ck_assert_msg(strstr(err.msg, "redis") != NULL, "%s", err.msg);
    mockhs_destroy(mock);
  }
  event_base_free(base);
}
END_TEST

int main(void) {
  Suite *s = suite_create("mock_redis");
  TCase *tc = tcase_create("redis");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, sut_messages_are_recorded_per_channel);
  tcase_add_test(tc, own_publishes_are_not_taken_for_the_sut);
  tcase_add_test(tc, mock_comes_back_after_a_restart);
  tcase_add_test(tc, no_redis_is_a_clear_error);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
