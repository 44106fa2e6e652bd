/* passive: requirements checked on every test's wire ledger, whatever the test is
 * about (requirements.md marks them "passive"):
 *   FR-02  every line the SUT wrote is a valid command of its dialect that a worker
 *          may send (parsed with the codec in the client direction; over Redis, any
 *          direction), without CR or embedded bytes the grammar refuses;
 *   KA-02  (2018) every PING carries data — part of the 2018 grammar;
 *   OUT-10 FEDERATION_ACK only from a fedsender, USER_SYNC / CLEAR_USER_SYNC only
 *          from a SUT with the sync role;
 * and on every test's SUT log:
 *   BG-07  no Twisted "Unhandled error in Deferred:" report;
 *   LC-03  no database transaction or connection started in the sentinel context;
 *   LC-04  no logcontext mismatch warning (the era's texts) before the first
 *          replication disconnect or SIGTERM (later ones are LC-05's, a SHOULD the
 *          logcontext suite checks).
 * A violation names the requirement, the line and where it was seen. */
#ifndef PASSIVE_H
#define PASSIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "ledger.h"
#include "profile.h"

/* BG-07 over the SUT's log (the file the harness reads, format per the profile): no
 * record whose message starts "Unhandled error in Deferred" (Twisted's late report of a
 * failure nobody handled, seed-behaviours.md §1.5). Applies to profiles of era v0.33.6
 * and later (earlier Synapse did exactly this). Reads at most the first 64 MiB. Returns
 * true if it holds (or the log is missing); otherwise false with "BG-07: ..." in why. */
bool passive_check_log(const char *log_file, const profile_t *profile, char *why, size_t cap);

/* LC-03 and LC-04 over the SUT's log (format and era per the profile; reads at most
 * the first 64 MiB). Records of LC-04 texts whose time is after lc04_until_ms (wall
 * clock, ms since the epoch; < 0 = no bound) are not counted. Returns true if both hold
 * (or the log is missing); otherwise false with "LC-03: ..." or "LC-04: ..." in why. */
bool passive_check_logcontext(const char *log_file, const profile_t *profile,
                              long long lc04_until_ms, char *why, size_t cap);

/* How long before the mock sees a close the SUT made the SUT may have made it: Synapse
 * logs its LC-05 warning ~1 ms after its own close, the mock notices a few ms later, and
 * log times have ms precision. Small, because a leaking worker (refworker's
 * logcontext-leak) may warn only ~50 ms before a close it makes after a short test. */
#define PASSIVE_LC04_CLOSE_SLACK_MS 25
/* For a close by the mock: the SUT logs its reaction within the same ms, log times are
 * truncated to ms and the mock's time is converted from the monotonic clock. */
#define PASSIVE_LC04_CLOCK_SLACK_MS 2

/* The end of LC-04's window (wall ms) from the harness's view of the run (each < 0 if it
 * did not happen): the earliest of the first replication close seen by the mock (minus
 * PASSIVE_LC04_CLOSE_SLACK_MS if the SUT closed it, PASSIVE_LC04_CLOCK_SLACK_MS if the mock did),
 * the harness's SIGTERM, and the end of the test body. Returns -1 (no bound) if all are
 * < 0. */
long long passive_lc04_until_ms(long long first_close_ms, bool closed_by_sut,
                                long long sigterm_ms, long long body_end_ms);

/* "LC-03" or "LC-04" if the record is one of the texts those rules forbid (for the
 * profile's era), else NULL. */
struct sutlog_record;
const char *passive_logcontext_rule(const profile_t *profile, const struct sutlog_record *record);

/* Whether message matches a Python format string in which "%s" and "%r" stand for any
 * text (the whole message; exported for tests). */
bool passive_format_matches(const char *format, const char *message);

/* The ledger checks on one entry (true for entries other than SUT lines). The harness
 * also runs it on entries the ledger drops for capacity (ledger_set_drop_hook), so a
 * SUT that floods the mock is still checked line by line. */
bool passive_check_entry(const ledger_entry_t *entry, const profile_t *profile, char *why,
                         size_t cap);

/* Checks every SUT line in the ledger. Returns true if all hold; otherwise false with
 * a one-line description ("FR-02: c2 line 'PING' does not parse: ...") in why. */
bool passive_check_ledger(const ledger_t *ledger, const profile_t *profile, char *why,
                          size_t cap);

#endif
