/* fixture_remote: the fake-remote side channel of fixtures (docs/FIXTURES.md "Fake
 * federation remotes"): parsing the steps `remote`, `!remote` and `remote ... count`,
 * and looking through what one fake remote (fake_remote.h) received for what a step
 * names. The remotes themselves are the caller's (the fixture suite or mockhs start one
 * per name of the header `remotes`); the waiting is fixture_play.c's.
 *
 * Pure functions over caller data, on the thread that runs the remotes' event base. */
#ifndef FIXTURE_REMOTE_H
#define FIXTURE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>

#include "fake_remote.h"
#include "fixture.h"

struct parser;

/* Parses `remote ARGS` / `!remote ARGS` (kw) into a new step. Returns 0, or -1 with the
 * parser's error naming file, line and step. */
int fixture_remote_parse(struct parser *p, const char *kw, const char *arg, const char *src);

/* What a remote step looks for, ready to test: the request matcher (http, http~) or
 * the expanded user id ("*": any) and state. */
typedef struct fixture_remote_want {
  fixture_matcher_t *request;
  char *user;
  const char *state;
} fixture_remote_want_t;

/* Builds want for step s with vars filled in. -1 with err when a pattern cannot be
 * built. Clear with fixture_remote_want_clear. */
int fixture_remote_want_init(fixture_remote_want_t *want, const fixture_step_t *s,
                             const fixture_vars_t *vars, rc_error_t *err);
void fixture_remote_want_clear(fixture_remote_want_t *want);

/* The index of the first request (http steps) or presence update (presence steps) at
 * or after `from` that want matches, or -1. *seen gets what it was ("PUT /_matrix/...",
 * "@a:hs online"). `from` counts requests or updates of the whole run. */
long fixture_remote_find(const fake_remote_t *remote, const fixture_step_t *s,
                         const fixture_remote_want_t *want, size_t from, char *seen, size_t cap);

/* How many presence updates the remote received for want's user (and state). */
size_t fixture_remote_count(const fake_remote_t *remote, const fixture_remote_want_t *want);

#endif
