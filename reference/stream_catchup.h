/* stream_catchup: what a modern worker does when a POSITION shows it missed rows.
 *
 * A POSITION <stream> <instance> <prev> <new> guarantees the writer wrote nothing in
 * (prev, new]. If the worker's position cur satisfies prev <= cur <= new it is up to
 * date; otherwise rows (cur, new] may be missing and must be fetched out of band
 * (spec §2.4, §7; PO-03..PO-07): a real worker reads them from its database or, for
 * HTTP-served streams, from
 *   GET /_synapse/replication/get_repl_stream_updates/<stream>/<txn>?from_token=&upto_token=
 *
 * This is the single place that decision is carried out. The HTTP client is not written
 * yet, so today the gap is reported and the position is adopted. */
#ifndef STREAM_CATCHUP_H
#define STREAM_CATCHUP_H

#include <stdbool.h>
#include <stdint.h>

/* Whether a POSITION with these tokens leaves rows to fetch from position cur. */
bool stream_catchup_needed(int64_t cur, int64_t prev_token, int64_t new_token);

/* Brings (stream, instance) from cur to the POSITION's new_token when
 * stream_catchup_needed() said so. Returns the position the stream must take: never
 * lower than cur (writers' positions only move forward in the modern dialect). */
int64_t stream_catchup_fill_gap(const char *stream, const char *instance, int64_t cur,
                                int64_t prev_token, int64_t new_token);

#endif
