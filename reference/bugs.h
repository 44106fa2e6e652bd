/* bugs: the known bugs refworker can re-introduce (--bug NAME), for the harness's
 * self-test: each switch brings back exactly one upstream behaviour that a suite must
 * catch (shared/spec/seed-behaviours.md, seeds A-I), or a resource leak the
 * connections suite must catch (requirements.md §13).
 *
 * A bug set is a plain bit mask the caller passes to the modules a bug lives in; no
 * module reads a global. */
#ifndef BUGS_H
#define BUGS_H

#include <stdbool.h>
#include <stdio.h>

#include "rc_error.h"

typedef enum bug {
  BUG_CACHE_NEEDS_START = 1u << 0,          /* seed A */
  BUG_HANDLERS_NOT_BACKGROUND = 1u << 1,    /* seed C */
  BUG_FIRE_AND_FORGET = 1u << 2,            /* seed D */
  BUG_MISSING_SERVER_HEADER = 1u << 3,      /* seed E */
  BUG_UNHANDLED_BACKGROUND_ERROR = 1u << 4, /* seed G */
  BUG_PRESENCE_PER_DESTINATION = 1u << 5,   /* seed H (fedsender role only) */
  BUG_LOGCONTEXT_LEAK = 1u << 6,            /* seeds I, C: contexts leak past callbacks */
  BUG_REPL_SOCKET_LEAK = 1u << 7,           /* CL-02, CL-04 (no seed) */
  BUG_HTTP_CONN_LEAK = 1u << 8,             /* CL-06 (no seed) */
  BUG_DB_IDLE_IN_TRANSACTION = 1u << 9,     /* seed B (--db only) */
  BUG_DB_CONN_NEVER_CLOSED = 1u << 10,      /* seed B, stricter half (--db only) */
  BUG_HANDLER_IN_SENTINEL_DB = 1u << 11,    /* #3606's warning, seed C's setting (--db only) */
  BUG_HTTP_CONN_OPEN_ON_SHUTDOWN = 1u << 12, /* CL-05, HTTP half (no seed) */
  BUG_NO_USER_SYNC_ON_RECONNECT = 1u << 13,  /* HS-08 (--sync only) */
  BUG_USER_SYNC_END_IMMEDIATELY = 1u << 14,  /* OUT-03, OUT-04 (--sync only) */
  BUG_USER_IP_EVERY_REQUEST = 1u << 15,      /* OUT-08 (--user only) */
  BUG_REDIS_SOCKET_LEAK = 1u << 24,          /* CL-04 over redis (no seed) */
  BUG_DB_CONN_PER_TRANSACTION = 1u << 25,    /* DB-05 (no seed; --db only) */
  BUG_PRESENCE_FOREIGN_USERS = 1u << 26,     /* PR-03 (no seed; fedsender only) */
  BUG_PRESENCE_LEAVE_IGNORED = 1u << 27,     /* PR-06 (no seed; fedsender only) */
  BUG_PRESENCE_FAILURE_BLOCKS = 1u << 28,    /* PR-07 (no seed; fedsender only) */
  BUG_PRESENCE_NO_ORIGIN = 1u << 29,         /* PR-04 (no seed; fedsender only) */
  BUG_FEDERATION_QUEUE_NEWEST_FIRST = 1u << 16, /* RD-04 (fedsender role only) */
  BUG_FEDERATION_UNKNOWN_ROW_ABORTS = 1u << 17, /* RD-10 (fedsender role only) */
  BUG_QUEUE_BEFORE_OPENING = 1u << 18,          /* RC-07 (no seed) */
  BUG_FEDERATION_POSITION_ERROR_ACKED = 1u << 19, /* BG-08 (fedsender with --db only) */
  BUG_REDIS_REPLICATE_UNANSWERED = 1u << 20, /* RE-04 (--redis only; before PR #7475) */
  BUG_REDIS_SUBSCRIBER_NO_PING = 1u << 21,   /* RE-08 (--redis only; before #9218) */
  BUG_CACHE_PRUNE_STAYS_IN_FLIGHT = 1u << 22, /* CA-07 */
  BUG_DB_TXN_NOT_CHARGED = 1u << 23,         /* BG-04 (--db only) */
} bug_t;

/* A set of bug_t bits. */
typedef unsigned int bug_set_t;

static inline bool bugs_has(bug_set_t set, bug_t bug) {
  return (set & (unsigned int)bug) != 0;
}

/* Adds the bug called `name` (e.g. "cache-needs-start") to *set. Returns 0, or -1 with
 * err naming the unknown bug and the known ones. */
int bugs_add(bug_set_t *set, const char *name, rc_error_t *err);

/* The switch name of a single bug, or NULL. */
const char *bugs_name(bug_t bug);

/* Writes one line per bug: NAME<TAB>SEED<TAB>one-line description. */
void bugs_print_list(FILE *out);

#endif
