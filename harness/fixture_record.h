/* fixture_record: `replcheck run --record DIR`. After a test's body, writes what the
 * mock saw (its ledger up to the end of the body, before teardown) as a replayable
 * fixture DIR/<test id>.fixture (fixture_write.h, docs/FIXTURES.md "Recording"), with
 * the test's requirement metadata, the profile's dialect and transport, the mock's
 * streams and rows, and the test's names as placeholders. Replaying it against the same
 * SUT (`replcheck run --fixtures DIR`) passes.
 *
 * Runs in the test process, after the body; the file appears atomically. */
#ifndef FIXTURE_RECORD_H
#define FIXTURE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "rc_error.h"

typedef struct rc_test rc_test_t;

/* Writes the ledger of t's mock up to (not including) end_seq. path gets the file
 * written. Returns 0, or -1 with err (nothing to record, cannot create the file). */
int fixture_record_test(rc_test_t *t, const char *dir, uint64_t end_seq, char *path, size_t cap,
                        rc_error_t *err);

#endif
