/* outbound: what the worker tells the main about its clients (requirements.md §7 and
 * HS-08): USER_SYNC start/end around /sync (role sync: OUT-01..OUT-06, HS-08) and USER_IP
 * for authenticated requests (role client: OUT-07, OUT-08; RE-07 over Redis).
 *
 * The harness is the client: it authenticates as the profile's first client.users entry
 * ("Authorization: Bearer <token>") against the SUT's http.url. /sync long-polls run on
 * the test's event loop (http_probe_start), so the mock keeps recording the SUT's lines
 * while they are held open; whoami requests are short blocking probes. Times of a /sync's
 * end are the harness's: when its answer had arrived. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_clock.h"
#include "redis_server.h"
#include "suite_observe.h"
#include "suite_util.h"

#define SYNC_PATH "/_matrix/client/r0/sync"
#define WHOAMI_PATH "/_matrix/client/r0/account/whoami"
#define U_SYNC_MS 10000
#define END_WINDOW_MAX_MS (2 * U_SYNC_MS + 1000) /* OUT-03: [U_sync, 2 U_sync + 1 s] */
#define PROMPT_MS 1000                           /* "promptly" (§0) */
#define MAX_REQUESTS 4

/* One /sync in flight or answered. */
typedef struct sync_request {
  http_probe_async_t *probe;
  int64_t started_ns;
  int64_t ended_ns; /* when the answer had arrived (harness clock) */
} sync_request_t;

typedef struct outbound {
  rc_test_t *t;
  const profile_user_t *user;
  char auth[600]; /* "Authorization: Bearer <token>" */
  sync_request_t requests[MAX_REQUESTS];
  size_t request_count;
} outbound_t;

typedef bool (*outbound_body_fn)(outbound_t *o);

/* Runs body with the requests it starts freed afterwards, whatever happened. */
static void with_client(rc_test_t *t, outbound_body_fn body) {
  outbound_t o = {.t = t};
  if (t->profile->user_count == 0) {
    rc_error(t, "harness: the profile has no client.users (the profile loader requires them)");
    return;
  }
  o.user = &t->profile->users[0];
  snprintf(o.auth, sizeof o.auth, "Authorization: Bearer %s", o.user->access_token);
  (void)body(&o);
  for (size_t i = 0; i < o.request_count; i++) http_probe_async_destroy(o.requests[i].probe);
}

#define CLIENT_TEST(name)                 \
  static bool name##_body(outbound_t *o); \
  static void name(rc_test_t *t) {        \
    with_client(t, name##_body);          \
  }

/* Wall-clock ms at a moment of the monotonic clock (the SUT stamps USER_SYNC with its
 * wall clock; the ledger records monotonic times). */
static int64_t wall_ms_at(int64_t mono_ns) {
  return rc_clock_wall_ms() - (rc_clock_mono_ns() - mono_ns) / 1000000;
}

static double seconds_between(int64_t from_ns, int64_t to_ns) {
  return (double)(to_ns - from_ns) / 1e9;
}

/* ---- the client side ---------------------------------------------------------------- */

/* Starts GET /sync?timeout=...[&set_presence=...] on the loop; NULL after an ERROR. */
static sync_request_t *sync_begin(outbound_t *o, int timeout_ms, const char *set_presence) {
  if (o->request_count == MAX_REQUESTS) {
    rc_error(o->t, "harness: more than %d /sync requests in one test", MAX_REQUESTS);
    return NULL;
  }
  char *base = rc_expand(o->t, "http.url", o->t->profile->http_url, NULL, 0);
  if (base == NULL) return NULL;
  size_t len = strlen(base);
  while (len > 0 && base[len - 1] == '/') base[--len] = '\0';
  char url[1024];
  snprintf(url, sizeof url, "%s%s?timeout=%d%s%s", base, SYNC_PATH, timeout_ms,
           set_presence ? "&set_presence=" : "", set_presence ? set_presence : "");
  free(base);
  const char *headers[] = {o->auth, NULL};
  http_request_t req = {.url = url, .timeout_ms = timeout_ms + 5000, .extra_headers = headers};
  rc_error_t err;
  sync_request_t *r = &o->requests[o->request_count];
  r->started_ns = rc_clock_mono_ns();
  r->probe = http_probe_start(o->t->base, &req, &err);
  if (r->probe == NULL) {
    rc_error(o->t, "%s", err.msg);
    return NULL;
  }
  o->request_count++;
  return r;
}

/* Runs the loop until r's answer is in (at most wait_ms); it must be a 200. */
static bool sync_finish(outbound_t *o, sync_request_t *r, int wait_ms) {
  int64_t deadline = rc_clock_mono_ns() + (int64_t)wait_ms * 1000000;
  while (!http_probe_async_done(r->probe) && rc_clock_mono_ns() < deadline) rc_observe(o->t, 10);
  if (!http_probe_async_done(r->probe))
    return rc_error(o->t, "the SUT did not answer GET %s within %d ms", SYNC_PATH, wait_ms);
  rc_error_t err;
  http_response_t *resp = http_probe_async_take(r->probe, &err);
  if (resp == NULL) return rc_error(o->t, "%s", err.msg);
  r->ended_ns = r->started_ns + (int64_t)(resp->seconds * 1e9);
  long status = resp->status;
  char body[200];
  snprintf(body, sizeof body, "%.160s", resp->body);
  http_response_destroy(resp);
  if (status != 200)
    return rc_error(o->t,
                    "GET %s as %s answered %ld (%s): the profile's client.users must name an "
                    "account the SUT accepts",
                    SYNC_PATH, o->user->user_id, status, body);
  return true;
}

/* One authenticated whoami, blocking; false after an ERROR. */
static bool whoami(outbound_t *o, const char *user_agent) {
  char agent[300];
  snprintf(agent, sizeof agent, "User-Agent: %s", user_agent);
  const char *headers[] = {o->auth, agent, NULL};
  http_response_t *r = suite_http(o->t, "GET", WHOAMI_PATH, headers);
  if (r == NULL) return false;
  long status = r->status;
  http_response_destroy(r);
  if (status != 200)
    return rc_error(o->t,
                    "GET %s as %s answered %ld: the profile's client.users must name an "
                    "account the SUT accepts",
                    WHOAMI_PATH, o->user->user_id, status);
  return true;
}

/* ---- the wire side ------------------------------------------------------------------ */

/* Whether e is a USER_SYNC of o's user (parsed into *cmd). */
static bool is_user_sync(outbound_t *o, const ledger_entry_t *e, proto_command_t *cmd) {
  rc_match_t m = {.side = LEDGER_SIDE_SUT, .command = PROTO_CMD_USER_SYNC};
  return rc_entry_matches(o->t, e, &m) && rc_parse_sut_line(o->t, e, cmd) &&
         proto_slice_eq(cmd->user_id, o->user->user_id);
}

/* The next USER_SYNC of o's user at or after *seq (on conn, 0 = any), waited for until
 * the monotonic deadline; *seq moves past it. NULL when none came. */
static const ledger_entry_t *next_user_sync(outbound_t *o, uint64_t *seq, int conn,
                                            int64_t deadline_ns, proto_command_t *cmd) {
  rc_match_t m = {.conn_id = conn, .side = LEDGER_SIDE_SUT, .command = PROTO_CMD_USER_SYNC};
  for (;;) {
    int64_t left_ms = (deadline_ns - rc_clock_mono_ns()) / 1000000;
    const ledger_entry_t *e = rc_wait(o->t, *seq, &m, left_ms > 0 ? (int)left_ms : 0);
    if (e == NULL) return NULL;
    *seq = e->seq + 1;
    if (is_user_sync(o, e, cmd)) return e;
  }
}

/* "start +0.05 s, end +12.00 s" for the user's USER_SYNC lines from seq on, times
 * relative to origin_ns; counts into *starts and *ends. */
static const char *user_sync_history(outbound_t *o, uint64_t seq, int64_t origin_ns, int *starts,
                                     int *ends, char *buf, size_t cap) {
  ledger_t *ledger = mockhs_ledger(o->t->mock);
  size_t used = 0;
  *starts = *ends = 0;
  buf[0] = '\0';
  for (; seq < ledger_next_seq(ledger); seq++) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    proto_command_t cmd;
    if (e == NULL || !is_user_sync(o, e, &cmd)) continue;
    if (cmd.sync_start)
      (*starts)++;
    else
      (*ends)++;
    if (used < cap)
      used += (size_t)snprintf(buf + used, cap - used, "%s%s %+.2f s on c%d", used ? ", " : "",
                               cmd.sync_start ? "start" : "end",
                               seconds_between(origin_ns, e->mono_ns), e->conn_id);
  }
  if (used == 0) snprintf(buf, cap, "no USER_SYNC for the user");
  return buf;
}

/* A long-poll held open, and its USER_SYNC start on the current connection. */
static const ledger_entry_t *held_sync(outbound_t *o, int timeout_ms, proto_command_t *cmd) {
  uint64_t seq = rc_now_seq(o->t);
  if (sync_begin(o, timeout_ms, NULL) == NULL) return NULL;
  const ledger_entry_t *e =
      next_user_sync(o, &seq, 0, rc_clock_mono_ns() + (int64_t)PROMPT_MS * 1000000, cmd);
  if (e == NULL || !cmd->sync_start) {
    rc_fail(o->t, "OUT-01: USER_SYNC start for the user within 1 s of its /sync", "%s%s",
            e ? e->text : "no USER_SYNC for ", e ? " came first" : o->user->user_id);
    return NULL;
  }
  return e;
}

/* ---- role sync ---------------------------------------------------------------------- */

/* OUT-01: the first presence-affecting /sync sends a start with the current time; a
 * concurrent second one sends nothing. */
CLIENT_TEST(sync_start_sent)
static bool sync_start_sent_body(outbound_t *o) {
  if (suite_start_connected(o->t) < 0) return false;
  uint64_t seq = rc_now_seq(o->t);
  sync_request_t *first = sync_begin(o, 2000, NULL);
  if (first == NULL) return false;
  proto_command_t cmd;
  uint64_t at = seq;
  const ledger_entry_t *e =
      next_user_sync(o, &at, 0, first->started_ns + (int64_t)PROMPT_MS * 1000000, &cmd);
  if (e == NULL)
    return rc_fail(o->t, "USER_SYNC ... start <now_ms> within 1 s of the /sync",
                   "no USER_SYNC for %s within 1 s", o->user->user_id);
  if (!cmd.sync_start)
    return rc_fail(o->t, "a start first", "the first USER_SYNC was '%s'", e->text);
  int64_t skew = cmd.last_sync_ms - wall_ms_at(e->mono_ns);
  if (skew < -2000 || skew > 2000)
    return rc_fail(o->t, "<ms> within 2 s of the current time",
                   "'%s' is %+.1f s off the harness clock", e->text, (double)skew / 1000.0);
  rc_note(o->t, "'%s' %.3f s after the /sync was sent", e->text,
          seconds_between(first->started_ns, e->mono_ns));
  sync_request_t *second = sync_begin(o, 1000, NULL);
  if (second == NULL || !sync_finish(o, second, 6000) || !sync_finish(o, first, 6000)) return false;
  rc_observe(o->t, 300);
  int starts, ends;
  char history[600];
  user_sync_history(o, seq, first->started_ns, &starts, &ends, history, sizeof history);
  if (starts != 1) rc_fail(o->t, "one start for two concurrent syncs of the user", "%s", history);
  return true;
}

/* OUT-02: set_presence=offline affects no presence: no USER_SYNC at all. */
CLIENT_TEST(sync_offline_silent)
static bool sync_offline_silent_body(outbound_t *o) {
  if (suite_start_connected(o->t) < 0) return false;
  uint64_t seq = rc_now_seq(o->t);
  sync_request_t *r = sync_begin(o, 1000, "offline");
  if (r == NULL || !sync_finish(o, r, 6000)) return false;
  int64_t left_ms = 3000 - (rc_clock_mono_ns() - r->started_ns) / 1000000;
  if (left_ms > 0) rc_observe(o->t, (int)left_ms);
  int starts, ends;
  char history[600];
  user_sync_history(o, seq, r->started_ns, &starts, &ends, history, sizeof history);
  if (starts + ends > 0)
    rc_fail(o->t, "no USER_SYNC within 3 s of a set_presence=offline /sync", "%s", history);
  return true;
}

/* OUT-03: one end, U_sync to 2 U_sync + 1 s after the sync ended, stamped with that
 * end. */
CLIENT_TEST(sync_end_after_grace)
static bool sync_end_after_grace_body(outbound_t *o) {
  if (suite_start_connected(o->t) < 0) return false;
  uint64_t seq = rc_now_seq(o->t);
  proto_command_t cmd;
  if (held_sync(o, 500, &cmd) == NULL) return false;
  sync_request_t *r = &o->requests[0];
  if (!sync_finish(o, r, 6000)) return false;
  uint64_t at = seq;
  const ledger_entry_t *end = NULL;
  int64_t deadline = r->ended_ns + (int64_t)END_WINDOW_MAX_MS * 1000000;
  while ((end = next_user_sync(o, &at, 0, deadline, &cmd)) != NULL && cmd.sync_start) {
  }
  char history[600];
  int starts, ends;
  if (end == NULL) {
    user_sync_history(o, seq, r->ended_ns, &starts, &ends, history, sizeof history);
    return rc_fail(o->t, "USER_SYNC ... end 10-21 s after the user's last sync ended",
                   "none within %.0f s (relative to the end: %s)", END_WINDOW_MAX_MS / 1000.0,
                   history);
  }
  double after = seconds_between(r->ended_ns, end->mono_ns);
  if (after < U_SYNC_MS / 1000.0)
    return rc_fail(o->t, "the end no sooner than U_sync = 10 s after the sync ended",
                   "'%s' %.2f s after it", end->text, after);
  int64_t off = cmd.last_sync_ms - wall_ms_at(r->ended_ns);
  if (off < -1000 || off > 1000)
    return rc_fail(o->t, "the end's <ms> within 1 s of the time the sync ended",
                   "'%s' is %+.2f s off it", end->text, (double)off / 1000.0);
  rc_observe(o->t, 1000);
  user_sync_history(o, seq, r->ended_ns, &starts, &ends, history, sizeof history);
  if (starts != 1 || ends != 1) return rc_fail(o->t, "exactly one end per start", "%s", history);
  rc_note(o->t, "end %.2f s after the sync ended, <ms> %+lld ms off", after, (long long)off);
  return true;
}

/* OUT-04: a second sync 3 s after the first ended keeps the user syncing: no end in
 * between, no second start, one end U_sync after the second. */
CLIENT_TEST(sync_resync_grace)
static bool sync_resync_grace_body(outbound_t *o) {
  if (suite_start_connected(o->t) < 0) return false;
  uint64_t seq = rc_now_seq(o->t);
  proto_command_t cmd;
  if (held_sync(o, 500, &cmd) == NULL) return false;
  sync_request_t *first = &o->requests[0];
  if (!sync_finish(o, first, 6000)) return false;
  rc_observe(o->t, 3000);
  uint64_t at = rc_now_seq(o->t);
  sync_request_t *second = sync_begin(o, 500, NULL);
  if (second == NULL || !sync_finish(o, second, 6000)) return false;
  const ledger_entry_t *end = NULL;
  int64_t deadline = second->ended_ns + (int64_t)END_WINDOW_MAX_MS * 1000000;
  while ((end = next_user_sync(o, &at, 0, deadline, &cmd)) != NULL && cmd.sync_start) {
  }
  if (end != NULL) rc_observe(o->t, 300);
  char history[600];
  int starts, ends;
  user_sync_history(o, seq, second->ended_ns, &starts, &ends, history, sizeof history);
  bool late_enough = end != NULL && end->mono_ns - second->ended_ns >= (int64_t)U_SYNC_MS * 1000000;
  if (starts != 1 || ends != 1 || !late_enough)
    rc_fail(o->t,
            "one start, and one end >= 10 s after the second sync ended (times relative to "
            "that)",
            "%s", history);
  return true;
}

/* SIGTERM, then the SUT's CLEAR_USER_SYNC within the shutdown grace (*clear NULL when
 * none came). false after an ERROR. */
static bool sigterm_and_wait_clear(outbound_t *o, const ledger_entry_t **clear) {
  uint64_t seq = rc_now_seq(o->t);
  *clear = NULL;
  if (!rc_sigterm_sut(o->t)) return rc_error(o->t, "the SUT is gone before SIGTERM");
  rc_match_t m = {.side = LEDGER_SIDE_SUT, .command = PROTO_CMD_CLEAR_USER_SYNC};
  *clear = rc_wait(o->t, seq, &m, o->t->profile->timing.shutdown_grace_ms);
  return true;
}

/* Over Redis a new "connection" is a new subscription: redis-server restarts, and the
 * worker subscribes again and publishes its REPLICATE (RE-09). Returns the sequence
 * number from which the new subscription's lines count, or 0 after recording an
 * outcome. */
static uint64_t redis_new_subscription(outbound_t *o) {
  rc_test_t *t = o->t;
  redis_server_kill(t->redis);
  rc_observe(t, 300);
  rc_error_t err;
  if (redis_server_relaunch(t->redis, 5000, &err) != 0 ||
      mockhs_redis_reconnect(t->mock, 5000, &err) != 0) {
    rc_error(t, "%s", err.msg);
    return 0;
  }
  uint64_t seq = rc_now_seq(t);
  int bound = 2 * suite_reconnect_bound_ms(t) + 1000;
  if (bound < 2000) bound = 2000;
  rc_match_t rep = {.side = LEDGER_SIDE_SUT, .command = PROTO_CMD_REPLICATE};
  if (rc_wait(t, seq, &rep, bound) == NULL) {
    rc_fail(t, "RE-09: REPLICATE published again after redis-server came back",
            "nothing within %d ms of the restart", bound);
    return 0;
  }
  return seq;
}

/* HS-08: a new connection (Redis: subscription) repeats the start of a user whose /sync
 * is in flight. */
CLIENT_TEST(sync_restart_on_reconnect)
static bool sync_restart_on_reconnect_body(outbound_t *o) {
  int conn = suite_start_connected(o->t);
  if (conn < 0) return false;
  proto_command_t cmd;
  if (held_sync(o, 10000, &cmd) == NULL) return false;
  uint64_t seq = rc_now_seq(o->t);
  int next = 0; /* the new connection; 0 over Redis (one pseudo-connection per channel) */
  if (o->t->profile->transport == PROFILE_TRANSPORT_REDIS) {
    if ((seq = redis_new_subscription(o)) == 0) return false;
  } else {
    mockhs_close_conn(o->t->mock, conn, false);
    int bound = suite_reconnect_bound_ms(o->t) + 1000;
    next = suite_wait_new_conn(o->t, seq, bound);
    if (next < 0)
      return rc_fail(o->t, "RC-01: a new connection after the mock closed c1", "none within %d ms",
                     bound);
  }
  /* Both waits return once the opening is answered: "after the opening lines". */
  uint64_t at = seq;
  const ledger_entry_t *e =
      next_user_sync(o, &at, next, rc_clock_mono_ns() + (int64_t)PROMPT_MS * 1000000, &cmd);
  char history[600];
  int starts, ends;
  user_sync_history(o, seq, o->requests[0].started_ns, &starts, &ends, history, sizeof history);
  char lines[1024];
  if (e == NULL)
    return rc_fail(o->t,
                   "USER_SYNC start for the user with a /sync in flight on the new "
                   "connection, within 1 s of its opening",
                   "no USER_SYNC for %s on %s%d (%s); the worker sent: %s", o->user->user_id,
                   next ? "c" : "the new subscription of c", next ? next : conn, history,
                   next ? suite_sut_lines(o->t, next, lines, sizeof lines) : "see the ledger");
  if (!cmd.sync_start || ends > 0)
    return rc_fail(o->t, "a start on the new connection before any end for the user", "%s",
                   history);
  return true;
}

/* OUT-05: the instance id is the same on every connection and in CLEAR_USER_SYNC. */
CLIENT_TEST(sync_instance_id_stable)
static bool sync_instance_id_stable_body(outbound_t *o) {
  int conn = suite_start_connected(o->t);
  if (conn < 0) return false;
  proto_command_t cmd;
  const ledger_entry_t *e = held_sync(o, 9000, &cmd);
  if (e == NULL) return false;
  char first[128], seen[128];
  proto_slice_copy(cmd.instance, first, sizeof first);
  for (int round = 1; round <= 3; round++) {
    uint64_t seq = rc_now_seq(o->t);
    mockhs_close_conn(o->t->mock, conn, false);
    int bound = suite_reconnect_bound_ms(o->t) + 1000;
    if ((conn = suite_wait_new_conn(o->t, seq, bound)) < 0)
      return rc_fail(o->t, "RC-01: a new connection after each close",
                     "none within %d ms after close %d", bound, round);
    e = next_user_sync(o, &seq, conn, rc_clock_mono_ns() + (int64_t)PROMPT_MS * 1000000, &cmd);
    if (e == NULL)
      return rc_fail(o->t, "a USER_SYNC on every connection to read the instance id from",
                     "none on c%d (HS-08: the user's /sync is in flight)", conn);
    if (!proto_slice_eq(cmd.instance, first))
      return rc_fail(o->t, "the same instance id on every connection",
                     "'%s' on c%d after '%s' on the first",
                     proto_slice_copy(cmd.instance, seen, sizeof seen), conn, first);
  }
  if (!sigterm_and_wait_clear(o, &e)) return false;
  if (e == NULL) {
    rc_note(o->t, "no CLEAR_USER_SYNC at shutdown to compare (OUT-06's concern)");
    return false;
  }
  if (rc_parse_sut_line(o->t, e, &cmd) && !proto_slice_eq(cmd.instance, first))
    rc_fail(o->t, "CLEAR_USER_SYNC with the instance id of the USER_SYNC lines",
            "'%s' after USER_SYNC lines with '%s'", e->text, first);
  return true;
}

/* OUT-06: SIGTERM -> CLEAR_USER_SYNC <instance_id> before the worker closes. */
CLIENT_TEST(clear_on_shutdown)
static bool clear_on_shutdown_body(outbound_t *o) {
  if (suite_start_connected(o->t) < 0) return false;
  proto_command_t cmd;
  if (held_sync(o, 5000, &cmd) == NULL) return false;
  char instance[128];
  proto_slice_copy(cmd.instance, instance, sizeof instance);
  const ledger_entry_t *e;
  if (!sigterm_and_wait_clear(o, &e)) return false;
  if (e == NULL)
    return rc_fail(o->t, "CLEAR_USER_SYNC <instance_id> between SIGTERM and exit",
                   "nothing within the %d ms shutdown grace",
                   o->t->profile->timing.shutdown_grace_ms);
  if (!rc_parse_sut_line(o->t, e, &cmd) || !proto_slice_eq(cmd.instance, instance))
    rc_fail(o->t, "CLEAR_USER_SYNC with the instance id of the USER_SYNC lines",
            "'%s' after a start with '%s'", e->text, instance);
  return true;
}

/* ---- role client -------------------------------------------------------------------- */

/* The USER_IP lines of o's user from seq on (the first one in *first, NULL if none). */
static int count_user_ip(outbound_t *o, uint64_t seq, const ledger_entry_t **first) {
  ledger_t *ledger = mockhs_ledger(o->t->mock);
  rc_match_t m = {.side = LEDGER_SIDE_SUT, .command = PROTO_CMD_USER_IP};
  int n = 0;
  *first = NULL;
  for (; seq < ledger_next_seq(ledger); seq++) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    proto_command_t cmd;
    if (e == NULL || !rc_entry_matches(o->t, e, &m) || !rc_parse_sut_line(o->t, e, &cmd) ||
        !proto_slice_eq(cmd.user_id, o->user->user_id))
      continue;
    if (n++ == 0) *first = e;
  }
  return n;
}

/* Waits up to PROMPT_MS for the user's first USER_IP from seq on. */
static const ledger_entry_t *wait_user_ip(outbound_t *o, uint64_t seq) {
  rc_match_t m = {.side = LEDGER_SIDE_SUT, .command = PROTO_CMD_USER_IP};
  int64_t deadline = rc_clock_mono_ns() + (int64_t)PROMPT_MS * 1000000;
  const ledger_entry_t *e;
  while ((e = rc_wait(o->t, seq, &m, (int)((deadline - rc_clock_mono_ns()) / 1000000))) != NULL) {
    proto_command_t cmd;
    if (rc_parse_sut_line(o->t, e, &cmd) && proto_slice_eq(cmd.user_id, o->user->user_id)) return e;
    seq = e->seq + 1;
    if (rc_clock_mono_ns() >= deadline) break;
  }
  return NULL;
}

/* What is wrong with a USER_IP row for this request, or NULL. */
static const char *user_ip_row_problem(outbound_t *o, const proto_command_t *cmd, const char *agent,
                                       char *buf, size_t cap) {
  json_t *row = json_loadb(cmd->row.ptr, cmd->row.len, JSON_DECODE_ANY, NULL);
  const char *token = json_string_value(json_array_get(row, 0));
  const char *ip = json_string_value(json_array_get(row, 1));
  const char *ua = json_string_value(json_array_get(row, 2));
  json_t *device = json_array_get(row, 3);
  json_t *seen = json_array_get(row, 4);
  buf[0] = '\0';
  if (token == NULL || strcmp(token, o->user->access_token) != 0)
    snprintf(buf, cap, "item 0 is not the access token used");
  else if (ip == NULL || strcmp(ip, "127.0.0.1") != 0)
    snprintf(buf, cap, "item 1 is not the client's IP 127.0.0.1");
  else if (ua == NULL || strcmp(ua, agent) != 0)
    snprintf(buf, cap, "item 2 is not the request's User-Agent '%s'", agent);
  else if (!json_is_null(device) && !json_is_string(device))
    snprintf(buf, cap, "item 3 (device id) is neither a string nor null");
  else if (o->user->device_id != NULL && json_is_string(device) &&
           strcmp(json_string_value(device), o->user->device_id) != 0)
    snprintf(buf, cap, "item 3 is not the token's device id %s", o->user->device_id);
  else if (!json_is_integer(seen))
    snprintf(buf, cap, "item 4 (last_seen_ms) is not an integer");
  json_decref(row);
  return buf[0] ? buf : NULL;
}

/* OUT-07: an authenticated request -> USER_IP <user> [token, ip, agent, device, ms]. */
CLIENT_TEST(user_ip_reported)
static bool user_ip_reported_body(outbound_t *o) {
  if (suite_start_connected(o->t) < 0) return false;
  char agent[64];
  snprintf(agent, sizeof agent, "replcheck-out07/%llx", (unsigned long long)o->t->seed);
  uint64_t seq = rc_now_seq(o->t);
  if (!whoami(o, agent)) return false;
  const ledger_entry_t *e = wait_user_ip(o, seq);
  if (e == NULL)
    return rc_fail(o->t, "USER_IP <user_id> <json> within 1 s of an authenticated request",
                   "no USER_IP for %s", o->user->user_id);
  proto_command_t cmd;
  char why[200];
  if (rc_parse_sut_line(o->t, e, &cmd) && user_ip_row_problem(o, &cmd, agent, why, sizeof why))
    rc_fail(o->t, "[access_token, ip, user_agent, device_id, last_seen_ms] of the request",
            "'%.300s': %s", e->text, why);
  return true;
}

/* OUT-08: five requests with one token within 10 s -> one USER_IP. */
CLIENT_TEST(user_ip_rate_limited)
static bool user_ip_rate_limited_body(outbound_t *o) {
  if (suite_start_connected(o->t) < 0) return false;
  uint64_t seq = rc_now_seq(o->t);
  for (int i = 0; i < 5; i++) {
    if (i > 0) rc_observe(o->t, 200);
    if (!whoami(o, "replcheck-out08")) return false;
  }
  rc_observe(o->t, PROMPT_MS);
  const ledger_entry_t *first;
  int n = count_user_ip(o, seq, &first);
  if (n != 1)
    rc_fail(o->t, "one USER_IP for 5 requests with one (user, token, IP) within 10 s",
            "%d USER_IP lines for %s%s%.200s", n, o->user->user_id, first ? ", the first: " : "",
            first ? first->text : "");
  return true;
}

/* RE-07: over Redis, USER_IP goes to <server_name>/USER_IP and nothing else does. */
CLIENT_TEST(user_ip_redis_channel)
static bool user_ip_redis_channel_body(outbound_t *o) {
  if (suite_start_connected(o->t) < 0) return false;
  uint64_t seq = rc_now_seq(o->t);
  if (!whoami(o, "replcheck-re07")) return false;
  const ledger_entry_t *e = wait_user_ip(o, seq);
  if (e == NULL)
    return rc_fail(o->t, "OUT-07: a USER_IP for the request", "no USER_IP for %s",
                   o->user->user_id);
  /* The mock records each channel as a pseudo-connection opened with its name. */
  ledger_t *ledger = mockhs_ledger(o->t->mock);
  const char *channel = NULL;
  bool others_on_ip = false;
  for (uint64_t s = ledger_first_seq(ledger); s < ledger_next_seq(ledger); s++) {
    const ledger_entry_t *x = ledger_get(ledger, s);
    if (x == NULL || x->conn_id != e->conn_id) continue;
    if (x->kind == LEDGER_OPEN) channel = x->text;
    proto_command_t cmd;
    if (x->kind == LEDGER_LINE && x->side == LEDGER_SIDE_SUT && rc_parse_sut_line(o->t, x, &cmd) &&
        cmd.kind != PROTO_CMD_USER_IP)
      others_on_ip = true;
  }
  const char *suffix = "/USER_IP";
  bool on_ip = channel != NULL && strlen(channel) > strlen(suffix) &&
               strcmp(channel + strlen(channel) - strlen(suffix), suffix) == 0;
  if (!on_ip)
    return rc_fail(o->t, "USER_IP published on <server_name>/USER_IP", "'%.200s' on %s", e->text,
                   channel ? channel : "an unknown channel");
  if (others_on_ip)
    rc_fail(o->t, "only USER_IP on <server_name>/USER_IP", "other commands were published there");
  return true;
}

#define SYNC_ROW(...) RC_TEST_ROW(.roles = PROFILE_ROLE_SYNC, .needs = RC_NEEDS_HTTP, __VA_ARGS__)
#define CLIENT_ROW(...) \
  RC_TEST_ROW(.roles = PROFILE_ROLE_CLIENT, .needs = RC_NEEDS_HTTP, __VA_ARGS__)
#define SOURCE_SYNCHROTRON "synapse app/synchrotron.py@v0.33.3; handlers/presence.py@v1.66.0"

const rc_test_def_t outbound_tests[] = {
    SYNC_ROW(.id = "outbound/user-sync/start", .dialects = RC_DIALECT_ALL, .requirements = "OUT-01",
             .level = RC_LEVEL_MUST, .transports = RC_TRANSPORT_ALL,
             .requirement = "A user's first presence-affecting /sync sends USER_SYNC start with "
                            "the current time within 1 s; a concurrent second one adds nothing.",
             .source = SOURCE_SYNCHROTRON " user_syncing; 1.66/fake-main c1, 1.12/real-pair",
             .run = sync_start_sent),
    SYNC_ROW(.id = "outbound/user-sync/offline-silent", .dialects = RC_DIALECT_ALL,
             .requirements = "OUT-02", .level = RC_LEVEL_MUST, .transports = RC_TRANSPORT_ALL,
             .requirement = "A /sync with set_presence=offline produces no USER_SYNC.",
             .source = "synapse app/synchrotron.py@v0.33.3 (affect_presence); "
                       "1.67-redis/fake-main",
             .run = sync_offline_silent),
    SYNC_ROW(.id = "outbound/user-sync/end-after-grace", .dialects = RC_DIALECT_ALL,
             .requirements = "OUT-03", .level = RC_LEVEL_MUST, .transports = RC_TRANSPORT_ALL,
             .tags = "slow",
             .requirement = "When the user's last /sync has ended and no new one starts, one "
                            "USER_SYNC end follows 10-21 s later, stamped with the time the "
                            "sync ended.",
             .source = "synapse app/synchrotron.py@v0.33.3 send_stop_syncing; 1.66/fake-main c1",
             .run = sync_end_after_grace),
    SYNC_ROW(.id = "outbound/user-sync/resync-grace", .dialects = RC_DIALECT_ALL,
             .requirements = "OUT-04", .level = RC_LEVEL_SHOULD, .transports = RC_TRANSPORT_ALL,
             .tags = "slow",
             .requirement = "A /sync starting within U_sync of the previous one's end causes "
                            "neither an end nor a new start.",
             .source = "synapse app/synchrotron.py@v0.33.3 mark_as_coming_online",
             .run = sync_resync_grace),
    SYNC_ROW(.id = "outbound/user-sync/reconnect-restart", .dialects = RC_DIALECT_ALL,
             .requirements = "HS-08", .level = RC_LEVEL_MUST, .transports = RC_TRANSPORT_ALL,
             .requirement = "Every new connection (Redis: subscription) carries USER_SYNC start "
                            "for each user with a /sync in flight, within 1 s of its opening "
                            "and before any end.",
             .source = "synapse protocol.py@v0.33.3 connectionMade; handler.py@v1.66.0 "
                       "new_connection; redis.py@v1.67.0 _send_subscribe",
             .run = sync_restart_on_reconnect),
    SYNC_ROW(.id = "outbound/user-sync/instance-id", .requirements = "OUT-05",
             .level = RC_LEVEL_MUST, .dialects = RC_DIALECT_MODERN, .transports = RC_TRANSPORT_TCP,
             .requirement = "The instance id of USER_SYNC is one token that stays the same across "
                            "reconnects and in CLEAR_USER_SYNC.",
             .source = "replication-protocol.md §2.2 USER_SYNC; synapse server.py instance_id",
             .run = sync_instance_id_stable),
    SYNC_ROW(.id = "outbound/clear-user-sync/on-shutdown", .requirements = "OUT-06",
             .level = RC_LEVEL_SHOULD, .dialects = RC_DIALECT_MODERN,
             .transports = RC_TRANSPORT_ALL,
             .requirement = "On SIGTERM the worker sends CLEAR_USER_SYNC <instance_id> before "
                            "closing.",
             .source = "synapse handlers/presence.py@v1.66.0 _on_shutdown",
             .run = clear_on_shutdown),
    CLIENT_ROW(.id = "outbound/user-ip/reported", .requirements = "OUT-07", .level = RC_LEVEL_MUST,
               .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL,
               .requirement = "An authenticated request produces USER_IP <user_id> [access_token, "
                              "ip, user_agent, device_id, last_seen_ms] within 1 s.",
               .source = "replication-protocol.md §2.2 USER_IP; 1.66/real-pair, 1.12/real-pair",
               .run = user_ip_reported),
    CLIENT_ROW(.id = "outbound/user-ip/rate-limited", .requirements = "OUT-08",
               .level = RC_LEVEL_SHOULD, .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL,
               .requirement = "At most one USER_IP per (user, access token, IP) per G_ip: five "
                              "requests within 10 s give one.",
               .source = "synapse slave/storage/client_ips.py@v0.33.3 (LAST_SEEN_GRANULARITY)",
               .run = user_ip_rate_limited),
    CLIENT_ROW(.id = "outbound/user-ip/redis-channel", .requirements = "RE-07",
               .level = RC_LEVEL_SHOULD, .dialects = RC_DIALECT_MODERN,
               .transports = RC_TRANSPORT_REDIS,
               .requirement = "Over Redis, USER_IP is published on <server_name>/USER_IP and "
                              "every other command on <server_name>.",
               .source = "synapse PR #12809 (v1.60); 1.67-redis/pubsub-transcript",
               .run = user_ip_redis_channel),
};
const size_t outbound_test_count = sizeof outbound_tests / sizeof outbound_tests[0];
