/* Unit tests of the presence generator and its oracle (mock_server/presence_gen.c), the
 * input and the expectations of the presence suite (requirements.md §9, PR-01..PR-06;
 * seed H): destinations are the servers sharing a room with a local user, never our
 * own, none for another server's user; membership changes apply to later rows; the
 * seeded population is reproducible; flushing emits ev rows on events and p rows on
 * federation through a real mock homeserver, with tokens after each stream's position. */
#include <check.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mockhs.h"
#include "presence_gen.h"
#include "stream_history.h"
#include "test_support.h"

#define OURS "hs.test"

static const char *const REMOTES[] = {"r1.test", "r2.test", "r3.test", "r4.test"};

static presence_gen_t *make(size_t remotes, size_t local, size_t per_remote, size_t rooms,
                            uint64_t seed) {
  presence_gen_config_t config = {.server_name = OURS,
                                  .remotes = REMOTES,
                                  .remote_count = remotes,
                                  .local_users = local,
                                  .users_per_remote = per_remote,
                                  .rooms = rooms,
                                  .seed = seed};
  rc_error_t err;
  presence_gen_t *gen = presence_gen_create(&config, &err);
  ck_assert_msg(gen != NULL, "%s", err.msg);
  return gen;
}

static void join(presence_gen_t *g, size_t room, const char *user, const char *membership) {
  rc_error_t err;
  ck_assert_msg(presence_gen_member(g, presence_gen_room(g, room), user, membership, &err) == 0,
                "%s", err.msg);
}

/* The destinations as a sorted "a,b" string. */
static const char *dests(presence_gen_t *g, const char *user, char *buf, size_t cap) {
  const char *out[8];
  size_t n = presence_gen_destinations(g, user, out, 8);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (strcmp(out[j], out[i]) < 0) {
        const char *tmp = out[i];
        out[i] = out[j];
        out[j] = tmp;
      }
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++)
    snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? "," : "", out[i]);
  return buf;
}

START_TEST(test_names_and_bad_config) {
  presence_gen_t *g = make(2, 2, 2, 2, 1);
  ck_assert_str_eq(presence_gen_local_user(g, 1), "@u1:" OURS);
  ck_assert_str_eq(presence_gen_remote_user(g, 1, 0), "@r1u0:r2.test");
  ck_assert_str_eq(presence_gen_room(g, 1), "!room1:" OURS);
  ck_assert_ptr_null(presence_gen_local_user(g, 2));
  ck_assert_ptr_null(presence_gen_remote_user(g, 2, 0));
  rc_error_t err;
  ck_assert_int_eq(presence_gen_member(g, "!nowhere:x", "@u0:" OURS, "join", &err), -1);
  ck_assert_str_eq(err.msg, "presence_gen: unknown room !nowhere:x");
  ck_assert_int_eq(presence_gen_burst(g, 3, &err), -1);
  presence_gen_destroy(g);
  const char *const self[] = {OURS};
  presence_gen_config_t bad = {.server_name = OURS, .remotes = self, .remote_count = 1};
  ck_assert_ptr_null(presence_gen_create(&bad, &err));
  ck_assert_str_eq(err.msg, "presence_gen: remote 0 is named like our server (" OURS ")");
}
END_TEST

START_TEST(test_destinations_oracle) {
  presence_gen_t *g = make(4, 2, 2, 3, 1);
  const char *u0 = presence_gen_local_user(g, 0), *u1 = presence_gen_local_user(g, 1);
  join(g, 0, u0, "join");
  join(g, 0, u1, "join");
  join(g, 0, presence_gen_remote_user(g, 0, 0), "join");
  join(g, 0, presence_gen_remote_user(g, 0, 1), "join");
  join(g, 0, presence_gen_remote_user(g, 1, 0), "join");
  join(g, 1, u0, "join");
  join(g, 1, presence_gen_remote_user(g, 2, 0), "join");
  join(g, 2, u1, "join");
  join(g, 2, presence_gen_remote_user(g, 3, 0), "join");
  char buf[256];
  /* Two members of r1 count once; our own server (u1) never. */
  ck_assert_str_eq(dests(g, u0, buf, sizeof buf), "r1.test,r2.test,r3.test");
  ck_assert_str_eq(dests(g, u1, buf, sizeof buf), "r1.test,r2.test,r4.test");
  /* Another server's user has no destinations (is_mine_id). */
  ck_assert_str_eq(dests(g, presence_gen_remote_user(g, 0, 0), buf, sizeof buf), "");
  rc_error_t err;
  ck_assert_int_eq(presence_gen_presence(g, u0, "online", &err), 0);
  ck_assert_int_eq(presence_gen_presence(g, presence_gen_remote_user(g, 0, 0), "online", &err), 0);
  /* Membership changes apply to later rows only. */
  join(g, 1, presence_gen_remote_user(g, 2, 0), "leave");
  join(g, 1, presence_gen_remote_user(g, 3, 1), "join");
  ck_assert_str_eq(dests(g, u0, buf, sizeof buf), "r1.test,r2.test,r4.test");
  ck_assert_int_eq(presence_gen_presence(g, u0, "offline", &err), 0);
  const char *last;
  ck_assert_uint_eq(presence_gen_expected(g, "r1.test", u0, &last), 2);
  ck_assert_str_eq(last, "offline");
  ck_assert_uint_eq(presence_gen_expected(g, "r3.test", u0, &last), 1);
  ck_assert_str_eq(last, "online");
  ck_assert_uint_eq(presence_gen_expected(g, "r4.test", u0, &last), 1);
  ck_assert_uint_eq(presence_gen_expected(g, "r1.test", presence_gen_remote_user(g, 0, 0), &last),
                    0);
  ck_assert_ptr_null(last);
  ck_assert_uint_eq(presence_gen_user_count(g), 2);
  ck_assert_str_eq(presence_gen_user_at(g, 0), u0);
  ck_assert_uint_eq(presence_gen_expected_total(g), 6);
  presence_gen_destroy(g);
}
END_TEST

/* The emitted rows of a stream, as one string per row. */
static size_t history(mockhs_t *mock, const char *stream, int64_t from, json_t **rows) {
  size_t count = 0;
  bool limited = false, truncated = false;
  int64_t upto = 0;
  const stream_row_t *r = stream_history_range(mockhs_history(mock), stream, from, INT64_MAX, 0,
                                               &count, &limited, &upto, &truncated);
  *rows = json_array();
  for (size_t i = 0; i < count; i++) {
    json_t *row = json_loadb(r[i].json, r[i].len, 0, NULL);
    ck_assert_ptr_nonnull(row);
    json_array_append_new(*rows, json_pack("[I, o]", (json_int_t)r[i].token, row));
  }
  return count;
}

START_TEST(test_flush_through_mock) {
  struct event_base *base = event_base_new();
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, PROTO_DIALECT_2018, OURS);
  cfg.streams[cfg.stream_count++] = (mockhs_stream_t){.name = "federation", .position = 5};
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  ck_assert_msg(mock != NULL, "%s", err.msg);
  presence_gen_t *g = make(1, 1, 1, 1, 1);
  join(g, 0, presence_gen_local_user(g, 0), "join");
  join(g, 0, presence_gen_remote_user(g, 0, 0), "join");
  ck_assert_int_eq(presence_gen_presence(g, presence_gen_local_user(g, 0), "online", &err), 0);
  int64_t last = 0;
  ck_assert_msg(presence_gen_flush(g, mock, &last, &err) == 0, "%s", err.msg);
  ck_assert_int_eq(last, 6);
  json_t *rows;
  ck_assert_uint_eq(history(mock, "events", 1, &rows), 2);
  /* events started at 1 (the 2018 stream set): tokens 2, 3; the modern events layout. */
  ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(rows, 0), 0)), 2);
  json_t *ev = json_array_get(json_array_get(rows, 1), 1);
  ck_assert_str_eq(json_string_value(json_array_get(ev, 0)), "ev");
  json_t *event = json_array_get(ev, 1);
  ck_assert_uint_eq(json_array_size(event), 9);
  ck_assert_str_eq(json_string_value(json_array_get(event, 1)), "!room0:" OURS);
  ck_assert_str_eq(json_string_value(json_array_get(event, 2)), "m.room.member");
  ck_assert_str_eq(json_string_value(json_array_get(event, 3)), "@r0u0:r1.test");
  ck_assert_str_eq(json_string_value(json_array_get(event, 6)), "join");
  ck_assert(json_is_false(json_array_get(event, 7)));
  json_decref(rows);
  ck_assert_uint_eq(history(mock, "federation", 0, &rows), 1);
  json_t *p = json_array_get(json_array_get(rows, 0), 1);
  ck_assert_str_eq(json_string_value(json_array_get(p, 0)), "p");
  json_t *state = json_array_get(p, 1);
  ck_assert_str_eq(json_string_value(json_object_get(state, "user_id")), "@u0:" OURS);
  ck_assert_str_eq(json_string_value(json_object_get(state, "state")), "online");
  ck_assert(json_is_true(json_object_get(state, "currently_active")));
  ck_assert(json_is_null(json_object_get(state, "status_msg")));
  ck_assert(json_is_integer(json_object_get(state, "last_active_ts")));
  ck_assert_ptr_null(json_object_get(state, "destination")); /* never the pre-#2115 shape */
  json_decref(rows);
  /* Nothing queued: nothing emitted, the token unchanged. */
  last = 0;
  ck_assert_int_eq(presence_gen_flush(g, mock, &last, &err), 0);
  ck_assert_int_eq(last, 0);
  presence_gen_destroy(g);
  mockhs_destroy(mock);
  event_base_free(base);
  libevent_global_shutdown();
}
END_TEST

/* A stream the mock does not write is an error, not a silent drop. */
START_TEST(test_flush_needs_the_stream) {
  struct event_base *base = event_base_new();
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, PROTO_DIALECT_2018, OURS);
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  presence_gen_t *g = make(1, 1, 1, 1, 1);
  ck_assert_int_eq(presence_gen_presence(g, presence_gen_local_user(g, 0), "online", &err), 0);
  ck_assert_int_eq(presence_gen_flush(g, mock, NULL, &err), -1);
  ck_assert_str_eq(err.msg, "presence_gen: the mock does not write the federation stream");
  presence_gen_destroy(g);
  mockhs_destroy(mock);
  event_base_free(base);
  libevent_global_shutdown();
}
END_TEST

/* The population as text: every local user's and remote's destinations. */
static char *population(uint64_t seed) {
  presence_gen_t *g = make(4, 30, 3, 8, seed);
  rc_error_t err;
  ck_assert_int_eq(presence_gen_populate(g, &err), 0);
  char *text = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&text, &size);
  char buf[256];
  for (size_t i = 0; i < 30; i++) {
    const char *u = presence_gen_local_user(g, i);
    fprintf(out, "%s:%s\n", u, dests(g, u, buf, sizeof buf));
    /* The last remote never joins: the uninterested one. */
    ck_assert_ptr_null(strstr(buf, "r4.test"));
  }
  ck_assert_int_eq(presence_gen_burst(g, 30, &err), 0);
  ck_assert_uint_eq(presence_gen_user_count(g), 30); /* distinct users */
  size_t interested = 0;
  for (size_t i = 0; i < 30; i++)
    interested += presence_gen_destinations(g, presence_gen_local_user(g, i), NULL, 0);
  ck_assert_uint_eq(presence_gen_expected_total(g), interested);
  fclose(out);
  presence_gen_destroy(g);
  return text;
}

START_TEST(test_populate_is_seeded) {
  char *a = population(7), *b = population(7), *c = population(8);
  ck_assert_str_eq(a, b);
  ck_assert_str_ne(a, c);
  /* Some users have several destinations, so fan-out is exercised. */
  ck_assert_ptr_nonnull(strstr(a, ".test,r"));
  free(a);
  free(b);
  free(c);
}
END_TEST

static Suite *presence_gen_suite(void) {
  Suite *s = suite_create("presence_gen");
  TCase *tc = tcase_create("oracle");
  tcase_add_test(tc, test_names_and_bad_config);
  tcase_add_test(tc, test_destinations_oracle);
  tcase_add_test(tc, test_flush_through_mock);
  tcase_add_test(tc, test_flush_needs_the_stream);
  tcase_add_test(tc, test_populate_is_seeded);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(presence_gen_suite());
}
