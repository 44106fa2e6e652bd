/* pg_passive: DB-03 as a passive check. While a test of a role-pg profile runs, the
 * SUT's sessions in its database are sampled once per period on the test's event loop
 * (so only while the loop runs: rc_wait, rc_observe, ...), and the first session seen
 * idle in a transaction for longer than the limit is kept as the violation, which
 * fails the test like the other passive checks (testctx.c).
 *
 * Ownership: the caller owns the sampler and destroys it before the event base. Each
 * sample is one short query on the sampler's own libpq session; sampling errors are
 * counted, not reported (the database tests report an unreachable database). */
#ifndef PG_PASSIVE_H
#define PG_PASSIVE_H

#include <event2/event.h>

#include "rc_error.h"

/* DB-03's limit and the sampling period. */
#define PG_PASSIVE_IDLE_XACT_MAX_MS 10000
#define PG_PASSIVE_PERIOD_MS 1000

typedef struct pg_passive pg_passive_t;

/* Connects with dsn (the harness's superuser, the test's database) and arms the timer.
 * NULL with err. */
pg_passive_t *pg_passive_start(struct event_base *base, const char *dsn, int period_ms,
                               long max_idle_ms, rc_error_t *err);
/* "DB-03: backend pid ... idle in transaction for N ms ...", or NULL while none. */
const char *pg_passive_violation(const pg_passive_t *sampler);
/* Stops and frees. NULL is fine. */
void pg_passive_stop(pg_passive_t *sampler);

#endif
