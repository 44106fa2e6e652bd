#include "bugs.h"

#include <string.h>

typedef struct bug_entry {
  bug_t bug;
  const char *name;
  const char *seed;
  const char *description;
} bug_entry_t;

static const bug_entry_t bug_table[] = {
    {BUG_CACHE_NEEDS_START, "cache-needs-start", "A",
     "expiring caches reap only after a start call nobody makes: entries never expire by "
     "time, no prune_cache_* process (Synapse <= v0.33.5, fixed by #3932)"},
    {BUG_HANDLERS_NOT_BACKGROUND, "handlers-not-background", "C",
     "replication command handlers run inline in the sentinel context, outside any "
     "background process (Synapse <= v0.33.2, fixed by #3709)"},
    {BUG_FIRE_AND_FORGET, "fire-and-forget", "D",
     "handlers start their work and return at once: the background process ends before "
     "the work (e.g. an HTTP catch-up) has finished (before #3709)"},
    {BUG_MISSING_SERVER_HEADER, "missing-server-header", "E",
     "error responses (404, 500, OPTIONS) lack the Server header (Synapse <= v0.28, fixed "
     "by #3208)"},
    {BUG_UNHANDLED_BACKGROUND_ERROR, "unhandled-background-error", "G",
     "handler exceptions are not logged at once at ERROR; Twisted's CRITICAL 'Unhandled "
     "error in Deferred:' appears 2 s later instead (Synapse v0.33.3-v0.33.5, #3927)"},
    {BUG_PRESENCE_PER_DESTINATION, "presence-per-destination", "H",
     "with --fedsender: one presence update per destination per room member instead of "
     "once per destination (before #2115)"},
    {BUG_LOGCONTEXT_LEAK, "logcontext-leak", "I",
     "the reactor runs in the startup context 'main', and a replication handler's context "
     "is not restored when it returns: it leaks into later lines and callbacks (before "
     "#2027; the run_in_background leak of seed C)"},
    {BUG_REPL_SOCKET_LEAK, "replication-socket-leak-on-reconnect", "-",
     "when the main closes the replication connection the worker reconnects but never "
     "closes the old socket: one descriptor in CLOSE_WAIT per loss (CL-02, CL-04)"},
    {BUG_HTTP_CONN_LEAK, "http-conn-leak", "-",
     "every catch-up request opens a new keep-alive connection to the main and none is "
     "ever closed or reused (CL-06)"},
    {BUG_DB_IDLE_IN_TRANSACTION, "db-idle-in-transaction", "B",
     "with --db: the start-up read of events is never committed; its connection stays idle "
     "in a transaction holding its table lock until exit (Synapse <= v0.33.3, #3682, fixed "
     "by #3764)"},
    {BUG_DB_CONN_NEVER_CLOSED, "db-conn-never-closed", "B",
     "with --db: the start-up connection is committed but never closed, and no connection is "
     "closed at exit (the process just drops them; upstream's `with conn:` caveat)"},
    {BUG_HANDLER_IN_SENTINEL_DB, "handler-in-sentinel-db", "C",
     "with --db: replication handlers store stream positions from the sentinel logcontext, "
     "logging \"Starting db txn '...' from sentinel context\" (Synapse v0.33.2, #3606/#3709)"},
    {BUG_HTTP_CONN_OPEN_ON_SHUTDOWN, "http-conn-open-on-shutdown", "-",
     "on SIGTERM the replication connection is closed but the keep-alive catch-up "
     "connections to the main are left open while the process lingers 2 s before exiting "
     "(CL-05)"},
    {BUG_REDIS_SOCKET_LEAK, "redis-socket-leak-on-reconnect", "-",
     "with --redis: when a redis connection is lost the worker reconnects but keeps the old "
     "socket open: one descriptor in CLOSE_WAIT per loss (CL-04)"},
    {BUG_DB_CONN_PER_TRANSACTION, "db-conn-per-transaction", "-",
     "with --db: every stored stream position opens a new connection and the previous one "
     "is left open and idle until exit: sessions grow with replication activity (DB-05)"},
    {BUG_PRESENCE_FOREIGN_USERS, "presence-foreign-users", "-",
     "with --fedsender: presence rows of other servers' users are sent on to the servers "
     "sharing a room with them, as if they were ours (PR-03)"},
    {BUG_PRESENCE_LEAVE_IGNORED, "presence-leave-ignored", "-",
     "with --fedsender: membership rows other than joins are ignored, so a server whose "
     "users left a room keeps getting presence (PR-06)"},
    {BUG_PRESENCE_FAILURE_BLOCKS, "presence-failure-blocks", "-",
     "with --fedsender: after a failed transaction to any server, sending to every server "
     "stops for 10 s (one shared backoff instead of one per destination) (PR-07)"},
    {BUG_PRESENCE_NO_ORIGIN, "presence-no-origin", "-",
     "with --fedsender: transactions lack the \"origin\" field (PR-04)"},
    {BUG_NO_USER_SYNC_ON_RECONNECT, "no-user-sync-on-reconnect", "-",
     "with --sync: a new replication connection does not repeat USER_SYNC start for the "
     "users with a /sync in flight, so a 2018 main thinks they went offline (HS-08)"},
    {BUG_USER_SYNC_END_IMMEDIATELY, "user-sync-end-immediately", "-",
     "with --sync: USER_SYNC end goes out as soon as a user's last /sync ends, without the "
     "U_sync grace, so every resync sends end and start again (OUT-03, OUT-04)"},
    {BUG_USER_IP_EVERY_REQUEST, "user-ip-every-request", "-",
     "with --user: USER_IP is sent for every authenticated request instead of once per "
     "(user, token, ip) per LAST_SEEN_GRANULARITY (OUT-08)"},
    {BUG_FEDERATION_QUEUE_NEWEST_FIRST, "federation-queue-newest-first", "-",
     "with --fedsender: an EDU row that arrives while a transaction to its destination is in "
     "flight goes to the head of that destination's queue, so later rows overtake earlier "
     "ones behind a slow delivery (RD-04)"},
    {BUG_FEDERATION_UNKNOWN_ROW_ABORTS, "federation-unknown-row-aborts-unit", "-",
     "with --fedsender: a federation row of unknown type ends the processing of its unit; "
     "the rows after it are lost, the unit is still acknowledged (RD-10)"},
    {BUG_QUEUE_BEFORE_OPENING, "queue-before-opening", "-",
     "commands produced while disconnected are queued and written on the next connection "
     "before its opening lines (NAME, PING, REPLICATE) (RC-07)"},
    {BUG_FEDERATION_POSITION_ERROR_ACKED, "federation-position-error-acked", "-",
     "with --fedsender --db: a failed write of the federation position is only a WARNING, "
     "without traceback, and the position is acknowledged anyway (BG-08, #3138)"},
    {BUG_REDIS_REPLICATE_UNANSWERED, "redis-replicate-unanswered", "-",
     "with --redis: a REPLICATE on the channel, the worker's own echo included, is not "
     "answered; its POSITIONs go out once after subscribing (before v1.14 only the main "
     "answered, PR #7475; RE-04)"},
    {BUG_REDIS_SUBSCRIBER_NO_PING, "redis-subscriber-no-ping", "-",
     "with --redis: the subscribed connection never sends a Redis-protocol PING (the "
     "publisher still does; Synapse < v1.27 pinged on neither, #9218; RE-08)"},
    {BUG_CACHE_PRUNE_STAYS_IN_FLIGHT, "cache-prune-stays-in-flight", "-",
     "an expiring cache's reaper runs never finish: prune_cache_<name> stays in flight, one "
     "more per tick (CA-07)"},
    {BUG_DB_TXN_NOT_CHARGED, "db-txn-not-charged", "-",
     "with --db: database transactions are not charged to the background process that runs "
     "them: no synapse_background_process_db_txn_count series grows (BG-04)"},
};

#define BUG_COUNT (sizeof bug_table / sizeof bug_table[0])

int bugs_add(bug_set_t *set, const char *name, rc_error_t *err) {
  for (size_t i = 0; i < BUG_COUNT; i++) {
    if (strcmp(bug_table[i].name, name) == 0) {
      *set |= (unsigned int)bug_table[i].bug;
      return 0;
    }
  }
  char known[1024] = "";
  size_t used = 0;
  for (size_t i = 0; i < BUG_COUNT && used < sizeof known; i++) {
    size_t n = strlen(bug_table[i].name);
    if (used + n + 3 >= sizeof known) break;
    if (i > 0) {
      memcpy(known + used, ", ", 2);
      used += 2;
    }
    memcpy(known + used, bug_table[i].name, n);
    used += n;
    known[used] = '\0';
  }
  return rc_error_set(err, "--bug: unknown bug '%s' (known: %s; see --list-bugs)", name, known);
}

const char *bugs_name(bug_t bug) {
  for (size_t i = 0; i < BUG_COUNT; i++)
    if (bug_table[i].bug == bug) return bug_table[i].name;
  return NULL;
}

void bugs_print_list(FILE *out) {
  for (size_t i = 0; i < BUG_COUNT; i++)
    fprintf(out, "%s\t%s\t%s\n", bug_table[i].name, bug_table[i].seed, bug_table[i].description);
}
