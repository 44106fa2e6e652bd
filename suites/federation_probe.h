/* federation_probe: what the federation-sender tests outside the presence suite share
 * (suites/federation_rows.c, suites/federation_position.c): `federation` rows of type
 * "e" carrying a probe EDU (edu_type FEDERATION_PROBE_EDU, content {"seq": n}) for the
 * scene's first remote, emitted by the mock like a real main, and the order in which
 * that remote received the probes.
 *
 * Built on presence_scene.h (its remotes, its connection and its ack bookkeeping); the
 * scene's emitted token is kept up to date, so presence_scene_wait_ack's OUT-09 checks
 * hold. Everything runs on the test's loop. */
#ifndef FEDERATION_PROBE_H
#define FEDERATION_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "presence_scene.h"

#define FEDERATION_PROBE_EDU "org.replcheck.probe"

/* Opens a scene with one remote (remote1.example) and the SUT connected. false after
 * recording an outcome; close with presence_scene_close either way. */
bool federation_probe_open(rc_test_t *t, presence_scene_t *s);

/* Emits one federation unit at the next token: the rows `before` (raw JSON rows, may be
 * NULL/0) then one probe EDU row per seq in seqs, all sharing one token (batch rows
 * then the closing row). *token gets it. false after recording an ERROR. */
bool federation_probe_emit(presence_scene_t *s, const char *const *before, size_t before_count,
                           const int *seqs, size_t seq_count, int64_t *token);

/* The probe seqs remote1 has received, in arrival order (request order, then order
 * inside the request): up to cap into out; returns how many there are. */
size_t federation_probe_received(const presence_scene_t *s, int *out, size_t cap);

/* Runs the loop until remote1 has received at least `count` probes or timeout_ms
 * passes; returns whether it has. */
bool federation_probe_wait(presence_scene_t *s, size_t count, int timeout_ms);

/* "1, 3, 2" into buf ("none" when n is 0). Returns buf. */
const char *federation_probe_describe(const int *seqs, size_t n, char *buf, size_t cap);

#endif
