/* suite_observe: the observation channels the behaviour suites share beyond the wire
 * ledger: the SUT's metrics (M), its own HTTP responses (S) and its log (L), wrapped so
 * that a test body gets a verdict-ready answer or an ERROR recorded for it.
 *
 * Scrapes and probes are blocking libcurl requests with short deadlines (http_probe.h);
 * between polls the mock's loop runs, so the mock keeps serving the SUT. A SUT whose
 * HTTP listener is not up yet right after readiness gets up to STARTUP_GRACE to open
 * it; after that an unreachable endpoint is an ERROR (the test could not observe). */
#ifndef SUITE_OBSERVE_H
#define SUITE_OBSERVE_H

#include "http_probe.h"
#include "prom.h"
#include "sutlog.h"
#include "testctx.h"

/* Metric names (seed-behaviours.md §1.4, §1.6). Counters are looked up with or without
 * _total; cache series under both the 2018 colon names and the later underscore names
 * (F-16). */
#define METRIC_BG_START "synapse_background_process_start_count"
#define METRIC_BG_IN_FLIGHT "synapse_background_process_in_flight_count"

/* Scrapes the SUT's metrics (the profile's metrics.url for this test). Returns the
 * parsed scrape (caller frees with prom_destroy), or NULL after recording an ERROR. */
prom_t *suite_scrape(rc_test_t *t);

/* Scrapes every poll_ms until cond(scrape, arg) holds or timeout_ms passes, running the
 * mock meanwhile. Returns the last scrape (cond may be false: check with cond again or
 * use it as evidence), or NULL after recording an ERROR. */
prom_t *suite_scrape_until(rc_test_t *t, int timeout_ms, int poll_ms,
                           bool (*cond)(const prom_t *scrape, void *arg), void *arg);

/* The value of metric{name="<name>"} (plus `extra_label`="<extra_value>" when not NULL);
 * *found tells whether such a series exists (the value is then 0). */
double suite_metric(const prom_t *scrape, const char *metric, const char *name,
                    const char *extra_label, const char *extra_value, bool *found);

/* Background-process series: start count and in-flight gauge for a process name. */
double suite_bg_starts(const prom_t *scrape, const char *process, bool *found);
double suite_bg_in_flight(const prom_t *scrape, const char *process, bool *found);

/* Cache size of a cache: synapse_util_caches_cache:size or _cache_size. */
double suite_cache_size(const prom_t *scrape, const char *cache, bool *found);
/* Evictions of a cache: with reason (e.g. "time"), the series with that reason label if
 * the SUT labels them, else all evictions (2018 has no reason label); *labelled tells
 * which (may be NULL). */
double suite_cache_evicted(const prom_t *scrape, const char *cache, const char *reason, bool *found,
                           bool *labelled);

/* "name1=3, name2=0" for every series of metric whose name label starts with prefix
 * (NULL = all), at most cap bytes, "none" when there is none: evidence for messages. */
const char *suite_metric_series(const prom_t *scrape, const char *metric, const char *prefix,
                                char *buf, size_t cap);

/* Performs a request to path under the profile's http.url (method NULL = GET). Returns
 * the response, or NULL after recording an ERROR. extra_headers as in http_request_t. */
http_response_t *suite_http(rc_test_t *t, const char *method, const char *path,
                            const char *const *extra_headers);

/* A cache read through the profile's read_url for the key of insert number n: true with
 * *present when the SUT answered (200 = present, 404 = absent), false after recording a
 * FAIL/ERROR for any other answer. */
bool suite_cache_read(rc_test_t *t, const profile_cache_t *cache, int n, bool *present);

/* Inserts entry number n into cache as the profile's insert trigger says: the row is
 * emitted by the mock on the insert stream at the next token (every open connection
 * gets it, as from a real main). Returns false after recording an ERROR. */
bool suite_cache_insert(rc_test_t *t, const profile_cache_t *cache, int n);

/* Log: the file offset from which "lines logged from now on" are read. */
long suite_log_offset(rc_test_t *t);

/* Waits up to timeout_ms for a log record at or after *offset for which match returns
 * true (the record's following continuation lines are not seen by match). Returns true
 * if one was found; *offset is then just past it. */
bool suite_log_wait(rc_test_t *t, long *offset, int timeout_ms,
                    bool (*match)(const sutlog_record_t *record, void *arg), void *arg);

/* RD-04 (L): in the whole log of the test, the tokens of "Received rdata <stream>
 * [(<instance>)] -> <token>" lines strictly increase per stream and instance (batch rows,
 * "-> batch" / "-> None", do not count). Records a FAIL naming `requirement` with the
 * first pair out of order and returns false; notes when the log has no such line. */
bool suite_log_check_rdata_order(rc_test_t *t, const char *requirement);

#endif
