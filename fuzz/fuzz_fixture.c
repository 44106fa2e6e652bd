/* Fuzz target: the fixture loader (mock_server/fixture.h), on a fixture file as a test
 * author could write it. A refused fixture must come with an error message. Crashes,
 * sanitizer reports, leaks and broken invariants (abort) are findings. Built with
 * libFuzzer when REPLCHECK_FUZZ=ON; tests/test_fuzz_corpora.c calls the same entry
 * (FUZZ_ENTRY) on tests/fuzz/fixture/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
  rc_error_t err;
  memset(&err, 0, sizeof err);
  fixture_t *fixture = fixture_parse((const char *)data, size, "fuzz.fixture", &err);
  if (fixture == NULL && err.msg[0] == '\0') {
    fprintf(stderr, "fuzz_fixture: invariant broken: a refused fixture without an error\n");
    abort();
  }
  fixture_destroy(fixture);
  return 0;
}
