/* The self-test matrix (docs/SELFTEST.md): the real replcheck against the reference
 * worker with each of its seeded bugs (`refworker --bug NAME`, listed by
 * `refworker --list-bugs`), like Check's own check_check_master.c: a table of
 * (profile, bug, test id) -> expected verdict and a fragment of its message.
 *
 * For every run the JSON report is read back and every case compared with the table:
 * a listed case must end with its verdict and message; every other case must pass (or
 * be skipped as not applicable). So a suite that misses its bug fails this test, and so
 * does a suite that fails on a bug it is not about. refworker without a switch passes
 * everything selected. The matrix is printed as a table. */
#include <check.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rc_clock.h"
#include "test_support.h"

/* What each run selects: the behaviour suites and the seed-bug fixtures, plus the protocol tests a
 * bug could plausibly disturb (catch-up ordering for fire-and-forget work, the wire for inline
 * handlers) and the passive wire test. */
#define BEHAVIOUR \
  "'http/*' 'background/*' 'cache/*' 'presence/*' 'fixtures/seeds/*' protocol/passive/wire-grammar"
#define WITH_POSITION BEHAVIOUR " 'protocol/position/*'"
#define WITH_RDATA BEHAVIOUR " 'protocol/rdata/*'"
/* The presence suite and the seed fixtures (seed H's is a presence one), for the presence
 * bugs other than H. */
#define PRESENCE "'presence/*' 'fixtures/seeds/*'"
/* The logcontext and connections suites; with the behaviour suites and the reconnect
 * tests for the leaks, to show that nothing else fails on them. */
#define LOGCONTEXT "'logcontext/*' 'connections/*' 'fixtures/seeds/*' protocol/passive/wire-grammar"
#define WITH_LEAKS BEHAVIOUR " 'logcontext/*' 'connections/*' 'protocol/reconnect/*'"
/* The database suite and the seed fixtures (seed B's observes the database), with the
 * shutdown tests its bugs could disturb. */
#define DATABASE "'db/*' 'fixtures/seeds/*' 'protocol/shutdown/*'"
/* The connections suite, with the shutdown tests a slow exit could disturb. */
#define SHUTDOWN "'connections/*' 'protocol/shutdown/*'"
/* The outbound suite (roles sync and client), with the reconnect and shutdown tests its
 * USER_SYNC lines at the opening and at SIGTERM could disturb. */
#define OUTBOUND \
  "'outbound/*' 'protocol/reconnect/*' 'protocol/shutdown/*' protocol/passive/wire-grammar"
/* The federation sender's row handling (RD-04, RD-10), with the presence suite it shares
 * the transaction queue with. */
#define FEDERATION_ROWS "'federation/*' 'presence/*'"
/* Its stored position (RC-07, BG-08), with the reconnect and database tests. */
#define FEDERATION_POSITION \
  "'federation/*' 'protocol/reconnect/*' 'background/federation-position/*' 'db/*'"
/* The Redis tests, with the background suite the Redis transport feeds; without the 36 s
 * keepalive window where the bug is not about it. */
#define REDIS "'protocol/redis/*' 'background/*'"
#define REDIS_QUICK REDIS " '!protocol/redis/keepalive-ping'"
/* Over redis, for a leaking reconnect: the connections suite (CL-04's redis-server
 * restarts) and the redis protocol tests it could disturb. */
#define REDIS_LEAK "'connections/*' " REDIS_QUICK

typedef struct run {
  const char *profile; /* under profiles/ */
  const char *bug;     /* NULL: no switch */
  const char *selectors;
} run_t;

static const run_t RUNS[] = {
    {"refworker.json", NULL, WITH_POSITION " 'protocol/rdata/*' 'logcontext/*' 'connections/*'"},
    {"refworker.json", "cache-needs-start", BEHAVIOUR},
    {"refworker.json", "handlers-not-background", WITH_RDATA},
    {"refworker.json", "fire-and-forget", WITH_POSITION},
    {"refworker.json", "missing-server-header", BEHAVIOUR},
    {"refworker.json", "unhandled-background-error", BEHAVIOUR},
    {"refworker-2018.json", NULL, WITH_RDATA " 'logcontext/*' 'connections/*'"},
    {"refworker-2018.json", "cache-needs-start", BEHAVIOUR},
    {"refworker-2018.json", "handlers-not-background", WITH_RDATA},
    {"refworker-2018.json", "unhandled-background-error", BEHAVIOUR},
    {"refworker-fedsender-2018.json", NULL, WITH_RDATA},
    {"refworker-fedsender-2018.json", "presence-per-destination", WITH_RDATA},
    {"refworker-fedsender-2018.json", "presence-foreign-users", PRESENCE},
    {"refworker-fedsender-2018.json", "presence-leave-ignored", PRESENCE},
    {"refworker-fedsender-2018.json", "presence-failure-blocks", PRESENCE},
    {"refworker-fedsender-2018.json", "presence-no-origin", PRESENCE},
    {"refworker.json", "logcontext-leak", LOGCONTEXT},
    {"refworker-2018.json", "logcontext-leak", LOGCONTEXT},
    {"refworker.json", "replication-socket-leak-on-reconnect", WITH_LEAKS},
    {"refworker-2018.json", "replication-socket-leak-on-reconnect", WITH_LEAKS},
    {"refworker.json", "http-conn-leak", WITH_LEAKS},
    {"refworker.json", "http-conn-open-on-shutdown", SHUTDOWN},
    {"refworker-pg.json", NULL, DATABASE},
    {"refworker-pg.json", "db-idle-in-transaction", DATABASE},
    {"refworker-pg.json", "db-conn-never-closed", DATABASE},
    {"refworker-pg.json", "handler-in-sentinel-db", DATABASE},
    {"refworker-pg.json", "db-conn-per-transaction", DATABASE},
    {"refworker-redis.json", "redis-socket-leak-on-reconnect", REDIS_LEAK},
    {"refworker-sync.json", NULL, OUTBOUND},
    {"refworker-sync-2018.json", NULL, OUTBOUND},
    {"refworker-sync-redis.json", NULL, "'outbound/*'"},
    {"refworker-sync.json", "no-user-sync-on-reconnect", OUTBOUND},
    {"refworker-sync-2018.json", "no-user-sync-on-reconnect", "'outbound/*'"},
    {"refworker-sync-redis.json", "no-user-sync-on-reconnect", "'outbound/user-sync/*'"},
    {"refworker-sync.json", "user-sync-end-immediately", "'outbound/*'"},
    {"refworker-sync-2018.json", "user-ip-every-request", "'outbound/*'"},
    {"refworker-fedsender.json", NULL, FEDERATION_ROWS},
    {"refworker-fedsender.json", "federation-queue-newest-first", FEDERATION_ROWS},
    {"refworker-fedsender.json", "federation-unknown-row-aborts-unit", FEDERATION_ROWS},
    {"refworker-fedsender-pg.json", NULL, FEDERATION_POSITION},
    {"refworker-fedsender-pg.json", "queue-before-opening", FEDERATION_POSITION},
    {"refworker-fedsender-pg.json", "federation-position-error-acked", FEDERATION_POSITION},
    {"refworker-redis.json", NULL, REDIS " 'cache/*' 'connections/*'"},
    {"refworker-redis.json", "redis-replicate-unanswered", REDIS_QUICK},
    {"refworker-redis.json", "redis-subscriber-no-ping", "'protocol/redis/*'"},
    {"refworker.json", "cache-prune-stays-in-flight", BEHAVIOUR},
    {"refworker-pg.json", "db-txn-not-charged", DATABASE},
};
#define RUN_COUNT (sizeof RUNS / sizeof RUNS[0])

/* Bugs refworker knows that no run covers, and why (none today; a NULL row keeps the
 * table non-empty). */
static const struct {
  const char *bug;
  const char *why;
} UNCOVERED[] = {
    {NULL, NULL},
};

typedef struct expectation {
  const char *profile;
  const char *bug;
  const char *id; /* "*": every case of the run no other row names (a passive check the
                   * bug breaks in every test) */
  const char *verdict;
  const char *fragment; /* in the case's message */
} expectation_t;

#define LEAK_WARNING "Expected logging context sentinel but found"
#define PASSIVE_LC03 \
  "LC-03: the SUT started a database transaction or connection in the sentinel context"
#define PASSIVE_LC04 "LC-04: the SUT logged a logcontext mismatch warning"
#define M "refworker.json"
#define O "refworker-2018.json"
#define F "refworker-fedsender-2018.json"
#define P "refworker-pg.json"
#define R "refworker-redis.json"
#define S "refworker-sync.json"
#define S18 "refworker-sync-2018.json"
#define SR "refworker-sync-redis.json"
#define FM "refworker-fedsender.json"
#define FP "refworker-fedsender-pg.json"

static const expectation_t EXPECTED[] = {
    /* seed A: the reaper waits for a start call nobody makes */
    {M, "cache-needs-start", "cache/reaper/unprompted", "FAIL",
     "no prune_cache_device_updates series"},
    {M, "cache-needs-start", "cache/expiry/removed", "FAIL", "size still 1"},
    {M, "cache-needs-start", "cache/expiry/counted", "FAIL", "it went from 0 to 0"},
    {M, "cache-needs-start", "cache/expiry/reset-on-get", "FAIL", "still holds both entries"},
    {M, "cache-needs-start", "fixtures/seeds/cache-reaps-unprompted", "FAIL",
     "[at fixtures/seeds/cache-reaps-unprompted.fixture:22: metric "
     "synapse_background_process_start_count{name=\"prune_cache_device_updates\"} >= 1]"},
    {O, "cache-needs-start", "cache/reaper/unprompted", "FAIL",
     "no prune_cache_device_updates series"},
    {O, "cache-needs-start", "cache/expiry/removed", "FAIL", "size still 1"},
    {O, "cache-needs-start", "cache/expiry/counted", "FAIL", "it went from 0 to 0"},
    {O, "cache-needs-start", "cache/expiry/reset-on-get", "FAIL", "still holds both entries"},
    /* seed C: handlers run inline, outside any background process */
    {M, "handlers-not-background", "background/names/modern", "FAIL", "no such series"},
    {M, "handlers-not-background", "background/in-flight/held-catchup", "FAIL",
     "no in-flight series for it"},
    {M, "handlers-not-background", "background/handler-error/logged", "FAIL", "ERROR [sentinel]"},
    {M, "handlers-not-background", "fixtures/seeds/handlers-in-background", "FAIL",
     "[at fixtures/seeds/handlers-in-background.fixture:20: metric "
     "synapse_background_process_start_count{name=\"process-replication-data\"} >= 1]"},
    {M, "handlers-not-background", "fixtures/seeds/in-flight-while-working", "FAIL",
     "[at fixtures/seeds/in-flight-while-working.fixture:27: metric "
     "synapse_background_process_in_flight_count{name=\"process-replication-data\"} == 0]"},
    {M, "handlers-not-background", "fixtures/seeds/handler-error-logged", "FAIL",
     "[at fixtures/seeds/handler-error-logged.fixture:23: log~ "},
    {O, "handlers-not-background", "background/names/per-line-2018", "FAIL", "no such series"},
    {O, "handlers-not-background", "background/handler-error/logged", "FAIL", "ERROR [sentinel]"},
    /* seed D: the process ends before the work it started */
    {M, "fire-and-forget", "background/in-flight/held-catchup", "FAIL", "in flight 0"},
    {M, "fire-and-forget", "fixtures/seeds/in-flight-while-working", "FAIL",
     "[at fixtures/seeds/in-flight-while-working.fixture:24: !metric "
     "synapse_background_process_in_flight_count{name=\"process-replication-data\"} < 1]"},
    /* seed E: error responses without the Server header */
    {M, "missing-server-header", "http/server-header/present", "FAIL",
     "GET /_refworker/fail (500) has no Server header"},
    {M, "missing-server-header", "fixtures/seeds/server-header-on-errors", "FAIL",
     "no Server header (status 404) [at fixtures/seeds/server-header-on-errors.fixture:22: "
     "sut-http GET /_refworker/no-such-path -> header Server"},
    /* seed G: no prompt ERROR; Twisted's late CRITICAL report instead */
    {M, "unhandled-background-error", "background/handler-error/logged", "FAIL",
     "no ERROR line at all"},
    {M, "unhandled-background-error", "background/handler-error/processing-continues", "FAIL",
     "BG-07: the SUT logged Twisted's report"},
    {M, "unhandled-background-error", "background/handler-error/no-unhandled-deferred", "FAIL",
     "BG-07: the SUT logged Twisted's report"},
    {M, "unhandled-background-error", "fixtures/seeds/handler-error-logged", "FAIL",
     "[at fixtures/seeds/handler-error-logged.fixture:23: log~ "},
    {O, "unhandled-background-error", "background/handler-error/logged", "FAIL",
     "no ERROR line at all"},
    {O, "unhandled-background-error", "background/handler-error/processing-continues", "FAIL",
     "BG-07: the SUT logged Twisted's report"},
    {O, "unhandled-background-error", "background/handler-error/no-unhandled-deferred", "FAIL",
     "BG-07: the SUT logged Twisted's report"},
    /* seed H: one update per destination per member, uncoalesced */
    {F, "presence-per-destination", "presence/fan-out/members-only", "FAIL",
     "remote1.example received 2 updates for @u0:"},
    {F, "presence-per-destination", "presence/burst/exact-counts", "FAIL", "expected exactly 1"},
    {F, "presence-per-destination", "presence/coalesce/slow-remote", "NON_STRICT",
     "expected 'online'"},
    {F, "presence-per-destination", "fixtures/seeds/presence-once-per-destination", "FAIL",
     "[at fixtures/seeds/presence-once-per-destination.fixture:37: remote remote1.example count "
     "@alice:${server_name} == 1]"},
    /* seeds I and C: the loop runs in "main" and handler contexts leak into later
     * callbacks; every callback that finds one logs the v1.x mismatch warning, so the
     * passive LC-04 check fails every test */
    {M, "logcontext-leak", "logcontext/burst/named-contexts", "FAIL", LEAK_WARNING},
    {M, "logcontext-leak", "logcontext/ids/counted", "FAIL", LEAK_WARNING},
    {M, "logcontext-leak", "logcontext/reactor/sentinel", "FAIL", "after readiness"},
    {M, "logcontext-leak", "logcontext/leak/http-and-replication", "FAIL", LEAK_WARNING},
    {M, "logcontext-leak", "logcontext/disconnect/no-mismatch", "NON_STRICT", LEAK_WARNING},
    {M, "logcontext-leak", "fixtures/seeds/logcontext-restored", "FAIL",
     LEAK_WARNING " main' [at fixtures/seeds/logcontext-restored.fixture:51: !log~ "},
    {M, "logcontext-leak", "*", "FAIL", PASSIVE_LC04},
    {O, "logcontext-leak", "logcontext/burst/named-contexts", "FAIL", LEAK_WARNING},
    {O, "logcontext-leak", "logcontext/ids/counted", "FAIL", LEAK_WARNING},
    {O, "logcontext-leak", "logcontext/reactor/sentinel", "FAIL", "after readiness"},
    {O, "logcontext-leak", "logcontext/leak/http-and-replication", "FAIL", LEAK_WARNING},
    {O, "logcontext-leak", "logcontext/disconnect/no-mismatch", "NON_STRICT", LEAK_WARNING},
    {O, "logcontext-leak", "fixtures/seeds/logcontext-restored-2018", "FAIL",
     LEAK_WARNING " main' [at fixtures/seeds/logcontext-restored-2018.fixture:51: !log~ "},
    {O, "logcontext-leak", "*", "FAIL", PASSIVE_LC04},
    /* presence without a seed: one bug per requirement of the presence suite */
    {F, "presence-foreign-users", "presence/fan-out/foreign-user-ignored", "FAIL",
     "@r0u0:remote1.example but received"},
    {F, "presence-leave-ignored", "presence/membership/join-leave", "FAIL",
     "remote2.example received 2 updates for @u0:"},
    {F, "presence-failure-blocks", "presence/failure/isolated", "FAIL",
     "remote2.example had 1 of 2 updates"},
    {F, "presence-no-origin", "presence/edu/form", "FAIL",
     "has an origin other than the SUT's server name"},
    /* the main's closes leave the worker's socket in CLOSE_WAIT */
    {M, "replication-socket-leak-on-reconnect", "connections/peer-close/released", "FAIL",
     "still holds c1's socket"},
    {M, "replication-socket-leak-on-reconnect", "connections/storm/no-descriptor-growth", "FAIL",
     "socket(s) in CLOSE_WAIT"},
    {O, "replication-socket-leak-on-reconnect", "connections/peer-close/released", "FAIL",
     "still holds c1's socket"},
    {O, "replication-socket-leak-on-reconnect", "connections/storm/no-descriptor-growth", "FAIL",
     "socket(s) in CLOSE_WAIT"},
    /* a new database connection per stored position, the old ones left open */
    {P, "db-conn-per-transaction", "db/sessions/bounded-under-reconnects", "FAIL",
     "reconnect(s), pool maximum 1"},
    /* over redis: every lost connection's socket kept, in CLOSE_WAIT */
    {R, "redis-socket-leak-on-reconnect", "connections/storm/redis-restarts", "FAIL",
     "socket(s) to redis in CLOSE_WAIT"},
    /* one new keep-alive connection per catch-up request */
    {M, "http-conn-leak", "connections/http/pooled", "NON_STRICT", "after 20 catch-up requests"},
    /* the HTTP connections outlive the replication connection while the process lingers */
    {M, "http-conn-open-on-shutdown", "connections/shutdown/http-closed", "FAIL",
     "the SUT is still running and holds"},
    /* seed B: the start-up transaction left open (#3682) */
    {P, "db-idle-in-transaction", "db/init/no-idle-transaction", "FAIL",
     "state 'idle in transaction'"},
    {P, "db-idle-in-transaction", "db/init/no-table-lock", "FAIL",
     "AccessShareLock on events granted"},
    {P, "db-idle-in-transaction", "db/sessions/idle-transaction-bounded", "FAIL",
     "state 'idle in transaction'"},
    {P, "db-idle-in-transaction", "db/init/connection-closed", "NON_STRICT",
     "2 sessions, pool maximum 1"},
    {P, "db-idle-in-transaction", "fixtures/seeds/no-idle-transaction-after-start", "FAIL",
     "[at fixtures/seeds/no-idle-transaction-after-start.fixture:26: !db idle-in-transaction > "
     "0]"},
    /* seed B, stricter half: committed but never closed; dropped at exit */
    {P, "db-conn-never-closed", "db/init/connection-closed", "NON_STRICT",
     "2 sessions, pool maximum 1"},
    {P, "db-conn-never-closed", "db/shutdown/sessions-gone", "FAIL",
     "unexpected EOF on client connection"},
    /* #3606's warning: a db transaction started by a handler in the sentinel context */
    {P, "handler-in-sentinel-db", "db/txn/not-from-sentinel", "FAIL",
     "Starting db txn 'store_stream_position' from sentinel context"},
    /* and, through the passive LC-03 log check, every test that has the worker apply rows
     * (each applied unit stores its position); the others send no rows */
    {P, "handler-in-sentinel-db", "db/sessions/idle-transaction-bounded", "FAIL", PASSIVE_LC03},
    {P, "handler-in-sentinel-db", "db/init/connection-closed", "FAIL", PASSIVE_LC03},
    {P, "handler-in-sentinel-db", "db/sessions/bounded-under-reconnects", "FAIL", PASSIVE_LC03},
    {P, "handler-in-sentinel-db", "db/shutdown/sessions-gone", "FAIL", PASSIVE_LC03},
    {P, "handler-in-sentinel-db", "fixtures/seeds/logcontext-restored", "FAIL", PASSIVE_LC03},
    {P, "handler-in-sentinel-db", "fixtures/seeds/no-idle-transaction-after-start", "FAIL",
     PASSIVE_LC03},
    /* a new connection does not repeat the starts of the users syncing (HS-08); OUT-05
     * reads the instance id from those starts */
    {S, "no-user-sync-on-reconnect", "outbound/user-sync/reconnect-restart", "FAIL",
     "HS-08: no USER_SYNC for @alice:test on c2"},
    {S, "no-user-sync-on-reconnect", "outbound/user-sync/instance-id", "FAIL",
     "OUT-05: none on c2 (HS-08: the user's /sync is in flight)"},
    {S18, "no-user-sync-on-reconnect", "outbound/user-sync/reconnect-restart", "FAIL",
     "HS-08: no USER_SYNC for @alice:test on c2"},
    {SR, "no-user-sync-on-reconnect", "outbound/user-sync/reconnect-restart", "FAIL",
     "HS-08: no USER_SYNC for @alice:test on the new subscription"},
    /* USER_SYNC end as soon as the sync ends, without the U_sync grace */
    {S, "user-sync-end-immediately", "outbound/user-sync/end-after-grace", "FAIL",
     "OUT-03: 'USER_SYNC "},
    {S, "user-sync-end-immediately", "outbound/user-sync/resync-grace", "NON_STRICT",
     "OUT-04: start "},
    /* USER_IP for every request */
    {S18, "user-ip-every-request", "outbound/user-ip/rate-limited", "NON_STRICT",
     "OUT-08: 5 USER_IP lines for @alice:test"},
    /* RD-04: EDUs queued behind a slow delivery go out newest first */
    {FM, "federation-queue-newest-first", "federation/order/slow-first-delivery", "FAIL",
     "remote1 received the probes in the order 1, 4, 3, 2"},
    /* RD-10: the rows after an unknown type are lost */
    {FM, "federation-unknown-row-aborts-unit", "federation/rows/unknown-type-skipped", "FAIL",
     "remote1 received no probe within"},
    /* RC-07: the ack produced while disconnected goes out ahead of NAME */
    {FP, "queue-before-opening", "protocol/reconnect/command-while-disconnected", "FAIL",
     "is line 1 of c2; NAME is line 2"},
    /* BG-08: a failed position write is only a WARNING, and acked */
    {FP, "federation-position-error-acked", "background/federation-position/error-logged",
     "FAIL", "no ERROR line at all within 1 s"},
    /* (it runs on the pg profile since that profile exposes metrics) */
    {P, "handler-in-sentinel-db", "fixtures/seeds/handlers-in-background", "FAIL", PASSIVE_LC03},
    /* seed A also leaves CA-07 nothing to look at: no reaper runs between the scrapes */
    {M, "cache-needs-start", "cache/reaper/own-context", "NON_STRICT",
     "prune_cache_device_updates never started"},
    {O, "cache-needs-start", "cache/reaper/own-context", "NON_STRICT",
     "prune_cache_device_updates never started"},
    /* seed C's sentinel transactions are charged to no handling process (BG-04) */
    {P, "handler-in-sentinel-db", "db/txn/charged-to-process", "FAIL",
     "first [TXN START] elsewhere: "},
    /* RE-04: only the main's REPLICATE was answered before PR #7475 */
    {R, "redis-replicate-unanswered", "protocol/redis/replicate-answered", "FAIL",
     "1 such POSITION(s)"},
    /* RE-08: the subscribed connection never pings */
    {R, "redis-subscriber-no-ping", "protocol/redis/keepalive-ping", "NON_STRICT",
     "0 PING(s), longest gap 3"},
    /* CA-07: reaper runs that never end */
    {M, "cache-prune-stays-in-flight", "cache/reaper/own-context", "NON_STRICT",
     "prune_cache_device_updates in flight "},
    /* BG-04: transactions charged to no process */
    {P, "db-txn-not-charged", "db/txn/charged-to-process", "FAIL",
     "{name=\"process-replication-data\"} 0 (before 0)"},
};
#define EXPECTED_COUNT (sizeof EXPECTED / sizeof EXPECTED[0])

static bool same(const char *a, const char *b) {
  return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static const expectation_t *expected_for(const run_t *run, const char *id) {
  const expectation_t *any = NULL;
  for (size_t i = 0; i < EXPECTED_COUNT; i++) {
    if (strcmp(EXPECTED[i].profile, run->profile) != 0 || !same(EXPECTED[i].bug, run->bug))
      continue;
    if (strcmp(EXPECTED[i].id, id) == 0) return &EXPECTED[i];
    if (strcmp(EXPECTED[i].id, "*") == 0) any = &EXPECTED[i];
  }
  return any;
}

/* ---------------------------------------------------------------------------------
 * Running */

static char *work;

typedef struct outcome {
  int64_t started_ms;
  pid_t pid;      /* while running */
  json_t *report; /* the run's JSON report */
  char *problems; /* mismatches, one per line ("" when none) */
  double seconds;
  bool skipped; /* left out by REPLCHECK_SELFTEST_ONLY */
} outcome_t;

static outcome_t outcomes[RUN_COUNT];

/* The shipped profile with "--bug NAME" added to its command. */
static char *variant_profile(const run_t *run, size_t index) {
  char *src = test_path(test_env("REPLCHECK_SOURCE_DIR"), "profiles/");
  char *path = NULL;
  ck_assert_int_ge(asprintf(&path, "%s%s", src, run->profile), 0);
  json_error_t jerr;
  json_t *doc = json_load_file(path, 0, &jerr);
  ck_assert_msg(doc != NULL, "%s: %s", path, jerr.text);
  json_t *command = json_object_get(doc, "command");
  ck_assert(json_is_array(command));
  if (run->bug != NULL) {
    json_array_append_new(command, json_string("--bug"));
    json_array_append_new(command, json_string(run->bug));
  }
  char name[256];
  snprintf(name, sizeof name, "%s --bug %s", json_string_value(json_object_get(doc, "name")),
           run->bug ? run->bug : "(none)");
  json_object_set_new(doc, "name", json_string(name));
  char file[64];
  snprintf(file, sizeof file, "run%zu.json", index);
  char *out = test_path(work, file);
  ck_assert_int_eq(json_dump_file(doc, out, JSON_INDENT(2)), 0);
  json_decref(doc);
  free(path);
  free(src);
  return out;
}

static void appendf(char **buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(char **buf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *line = NULL;
  ck_assert_int_ge(vasprintf(&line, fmt, ap), 0);
  va_end(ap);
  char *joined = NULL;
  ck_assert_int_ge(asprintf(&joined, "%s%s", *buf ? *buf : "", line), 0);
  free(*buf);
  free(line);
  *buf = joined;
}

/* Starts run `index` in the background (a shell running replcheck); returns its pid. */
static pid_t start_run(size_t index) {
  const run_t *run = &RUNS[index];
  char *profile = variant_profile(run, index);
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && TMPDIR='%s' exec '%s/replcheck' run --profile '%s' --jobs 2 --progress none "
           "--json run%zu.report.json --junit run%zu.xml %s > run%zu.out 2>&1",
           work, work, test_env("REPLCHECK_BIN_DIR"), profile, index, index, run->selectors, index);
  free(profile);
  outcomes[index].started_ms = rc_clock_mono_ms();
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* Reads run `index`'s report after its replcheck exited with `status` and compares it
 * with the table. */
static void finish_run(size_t index, int status) {
  const run_t *run = &RUNS[index];
  outcome_t *o = &outcomes[index];
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o->seconds = (double)(rc_clock_mono_ms() - o->started_ms) / 1000.0;
  char name[64];
  snprintf(name, sizeof name, "run%zu.report.json", index);
  char *report = test_path(work, name);
  json_error_t jerr;
  o->report = json_load_file(report, 0, &jerr);
  o->problems = strdup("");
  if (rc != 0 && rc != 1)
    appendf(&o->problems, "  replcheck exited %d (see %s/run%zu.out)\n", rc, work, index);
  if (o->report == NULL) appendf(&o->problems, "  no JSON report: %s\n", jerr.text);
  free(report);
  if (o->report == NULL) return;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(o->report, "cases"), i, c) {
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *verdict = json_string_value(json_object_get(c, "verdict"));
    const char *message = json_string_value(json_object_get(c, "message"));
    if (id == NULL || verdict == NULL) continue;
    const expectation_t *e = expected_for(run, id);
    bool not_applicable =
        strcmp(verdict, "SKIP") == 0 && message != NULL && strncmp(message, "not applicable", 14) == 0;
    /* A case that does not apply breaks no passive check: "*" rows do not cover it. */
    if (e != NULL && strcmp(e->id, "*") == 0 && not_applicable) e = NULL;
    if (e != NULL) {
      if (strcmp(verdict, e->verdict) != 0)
        appendf(&o->problems, "  %s: expected %s (the bug's signature), got %s: %s\n", id,
                e->verdict, verdict, message ? message : "");
      else if (message == NULL || strstr(message, e->fragment) == NULL)
        appendf(&o->problems, "  %s: %s as expected, but the message lacks '%s': %s\n", id, verdict,
                e->fragment, message ? message : "(none)");
    } else if (strcmp(verdict, "PASS") != 0 && !not_applicable) {
      appendf(&o->problems, "  %s: expected PASS (%s), got %s: %s\n", id,
              run->bug ? "not about this bug" : "no bug", verdict, message ? message : "");
    }
  }
  /* A bug run without an expected failure would be a bug no suite catches. */
  bool any = false;
  for (size_t k = 0; k < EXPECTED_COUNT; k++)
    any |= strcmp(EXPECTED[k].profile, run->profile) == 0 && same(EXPECTED[k].bug, run->bug);
  if (run->bug != NULL && !any)
    appendf(&o->problems,
            "  no test is expected to catch this bug: add its signature to EXPECTED\n");
  /* Every expectation of this run must name a case that ran. */
  for (size_t k = 0; k < EXPECTED_COUNT; k++) {
    const expectation_t *e = &EXPECTED[k];
    if (strcmp(e->profile, run->profile) != 0 || !same(e->bug, run->bug) ||
        strcmp(e->id, "*") == 0)
      continue;
    bool seen = false;
    json_array_foreach(json_object_get(o->report, "cases"), i,
                       c) if (strcmp(json_string_value(json_object_get(c, "id")), e->id) == 0)
        seen = true;
    if (!seen) appendf(&o->problems, "  %s: expected %s but it did not run\n", e->id, e->verdict);
  }
}

/* ---------------------------------------------------------------------------------
 * The matrix */

static char cell_of(const outcome_t *o, const char *id) {
  size_t i;
  json_t *c;
  if (o->skipped) return ' ';
  if (o->report == NULL) return '!';
  json_array_foreach(json_object_get(o->report, "cases"), i, c) {
    if (strcmp(json_string_value(json_object_get(c, "id")), id) != 0) continue;
    const char *v = json_string_value(json_object_get(c, "verdict"));
    if (strcmp(v, "PASS") == 0) return '.';
    if (strcmp(v, "SKIP") == 0) return '-';
    if (strcmp(v, "NON_STRICT") == 0) return 'N';
    if (strcmp(v, "ERROR") == 0) return 'E';
    return 'F';
  }
  return ' ';
}

static void print_matrix(void) {
  printf(
      "\nSelf-test matrix ('.' pass, 'F' fail, 'N' non-strict, 'E' error, '-' not applicable, "
      "' ' not selected)\n\n");
  for (size_t r = 0; r < RUN_COUNT; r++)
    if (outcomes[r].skipped)
      printf("  run %zu: %-29s --bug %-27s not run\n", r, RUNS[r].profile,
             RUNS[r].bug ? RUNS[r].bug : "(none)");
    else
      printf("  run %zu: %-29s --bug %-27s %5.1f s\n", r, RUNS[r].profile,
             RUNS[r].bug ? RUNS[r].bug : "(none)", outcomes[r].seconds);
  printf("\n  %-52s", "test id \\ run");
  for (size_t r = 0; r < RUN_COUNT; r++) printf(" %zu", r % 10);
  printf("\n");
  /* Rows: every test id any run reported, in the first report's order. */
  const char *ids[512];
  size_t n = 0;
  for (size_t r = 0; r < RUN_COUNT; r++) {
    size_t i;
    json_t *c;
    if (outcomes[r].report == NULL) continue;
    json_array_foreach(json_object_get(outcomes[r].report, "cases"), i, c) {
      const char *id = json_string_value(json_object_get(c, "id"));
      bool known = false;
      for (size_t k = 0; k < n && !known; k++) known = strcmp(ids[k], id) == 0;
      if (!known && n < 512) ids[n++] = id;
    }
  }
  for (size_t k = 0; k < n; k++) {
    printf("  %-52s", ids[k]);
    for (size_t r = 0; r < RUN_COUNT; r++) printf(" %c", cell_of(&outcomes[r], ids[k]));
    printf("\n");
  }
  fflush(stdout);
}

/* REPLCHECK_SELFTEST_ONLY: a comma-separated list of bug names ("none" for the runs
 * without one) and profile file names; only the runs matching one of them run, and the
 * every-bug-has-a-run check is left out. Unset: every run. For working on one row. */
static bool run_selected(size_t index) {
  const char *only = getenv("REPLCHECK_SELFTEST_ONLY");
  if (only == NULL || only[0] == '\0') return true;
  const char *bug = RUNS[index].bug != NULL ? RUNS[index].bug : "none";
  for (const char *p = only; *p != '\0';) {
    size_t n = strcspn(p, ",");
    if ((strlen(bug) == n && strncmp(bug, p, n) == 0) ||
        (strlen(RUNS[index].profile) == n && strncmp(RUNS[index].profile, p, n) == 0))
      return true;
    p += n + (p[n] == ',');
  }
  return false;
}

/* `refworker --list-bugs`: every bug is covered by a run or listed as uncovered. */
static char *check_bug_list(void) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s/refworker' --list-bugs", test_env("REPLCHECK_BIN_DIR"));
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  char *problems = strdup(""), line[512];
  int count = 0;
  while (fgets(line, sizeof line, p) != NULL) {
    char *tab = strchr(line, '\t');
    if (tab == NULL) {
      appendf(&problems, "  --list-bugs line without NAME<TAB>SEED<TAB>description: %s", line);
      continue;
    }
    *tab = '\0';
    count++;
    bool covered = false;
    for (size_t r = 0; r < RUN_COUNT; r++) covered |= same(RUNS[r].bug, line);
    for (size_t u = 0; u < sizeof UNCOVERED / sizeof UNCOVERED[0]; u++)
      if (UNCOVERED[u].bug != NULL && strcmp(UNCOVERED[u].bug, line) == 0) {
        printf("  bug %s is not in the matrix: %s\n", line, UNCOVERED[u].why);
        covered = true;
      }
    if (!covered) appendf(&problems, "  bug %s has no run in the matrix\n", line);
  }
  int status = pclose(p);
  if (status != 0 || count == 0)
    appendf(&problems, "  '%s' failed (status %d, %d bugs listed)\n", cmd, status, count);
  return problems;
}

START_TEST(test_selftest_matrix) {
  work = test_make_temp_dir("replcheck-selftest");
  const char *only = getenv("REPLCHECK_SELFTEST_ONLY");
  char *problems = only != NULL && only[0] != '\0' ? strdup("") : check_bug_list();
  int64_t start = rc_clock_mono_ms();
  /* The runs mostly wait on the SUT's timers, so a few at once cost little CPU. */
  const char *env = getenv("REPLCHECK_SELFTEST_PARALLEL");
  size_t parallel = env != NULL && atoi(env) > 0 ? (size_t)atoi(env) : 2;
  size_t next = 0, running = 0;
  while (next < RUN_COUNT || running > 0) {
    if (next < RUN_COUNT && !run_selected(next)) {
      outcomes[next].skipped = true;
      outcomes[next].problems = strdup("");
      next++;
      continue;
    }
    if (next < RUN_COUNT && running < parallel) {
      outcomes[next].pid = start_run(next);
      next++;
      running++;
      continue;
    }
    int status;
    pid_t done = waitpid(-1, &status, 0);
    ck_assert_int_gt(done, 0);
    for (size_t r = 0; r < RUN_COUNT; r++) {
      if (outcomes[r].pid != done) continue;
      outcomes[r].pid = 0;
      running--;
      finish_run(r, status);
    }
  }
  for (size_t r = 0; r < RUN_COUNT; r++) {
    if (outcomes[r].problems[0] != '\0')
      appendf(&problems, "run %zu (%s, --bug %s):\n%s", r, RUNS[r].profile,
              RUNS[r].bug ? RUNS[r].bug : "(none)", outcomes[r].problems);
  }
  print_matrix();
  printf("\n  %zu runs in %.1f s, %zu at a time; work directory %s\n", RUN_COUNT,
         (double)(rc_clock_mono_ms() - start) / 1000.0, parallel, work);
  for (size_t r = 0; r < RUN_COUNT; r++) {
    json_decref(outcomes[r].report);
    free(outcomes[r].problems);
  }
  bool ok = problems[0] == '\0';
  if (ok) test_remove_tree(work);
  ck_assert_msg(ok, "the self-test matrix does not hold (reports kept in %s):\n%s", work, problems);
  free(problems);
  free(work);
}
END_TEST

static Suite *selftest_suite(void) {
  Suite *s = suite_create("selftest");
  TCase *tc = tcase_create("matrix");
  /* ctest's TIMEOUT for this test is the same (tests/CMakeLists.txt). */
  tcase_set_timeout(tc, 1500);
  tcase_add_test(tc, test_selftest_matrix);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(selftest_suite());
}
