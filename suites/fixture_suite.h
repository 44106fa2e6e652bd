/* fixture_suite: the `fixtures` suite. Every *.fixture file under a directory is one
 * test (docs/FIXTURES.md): its id is "fixtures/" + its path below the directory without
 * ".fixture", its registry row comes from its header, and its body plays the script
 * against the SUT (fixture_play.h). A file that does not load still gets a row, whose
 * test ends in ERROR naming the file, line and field: never a silent pass or skip.
 *
 * fixture_suite_load() runs once at start-up, before the registry is used; the loaded
 * fixtures and their rows live until fixture_suite_unload(). Forked test processes
 * inherit them. Not thread-safe (start-up only). */
#ifndef FIXTURE_SUITE_H
#define FIXTURE_SUITE_H

#include <stddef.h>

#include "rc_error.h"

/* Loads every fixture under dir and adds its rows to the registry. display_root is how
 * paths are shown (row file, messages): "fixtures" for the source tree's directory, or
 * NULL to show dir as given. Returns the number of fixture files (broken ones
 * included), or -1 with err when dir cannot be read or a test id is taken twice. */
int fixture_suite_load(const char *dir, const char *display_root, rc_error_t *err);

/* Frees what fixture_suite_load made (the registry rows must no longer be used). */
void fixture_suite_unload(void);

/* The source tree's fixtures/ directory, found from the running binary: the first
 * <ancestor>/fixtures of its directory, up to three levels up (build/bin/replcheck ->
 * fixtures/). Writes it into buf and returns buf, or NULL when there is none. */
const char *fixture_suite_default_dir(char *buf, size_t cap);

#endif
