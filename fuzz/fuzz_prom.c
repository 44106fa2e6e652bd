/* Fuzz target: the Prometheus text parser (harness/prom.h), on a scrape as a SUT could
 * serve it. A parsed result is walked whole (samples, labels, types, help, lookups and
 * sums); a refused one must come with an error message. Crashes, sanitizer reports and
 * broken invariants (abort) are findings. Built with libFuzzer when REPLCHECK_FUZZ=ON;
 * tests/test_fuzz_corpora.c calls the same entry (FUZZ_ENTRY) on tests/fuzz/prom/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void broken(const char *what) {
  fprintf(stderr, "fuzz_prom: invariant broken: %s\n", what);
  abort();
}

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
  rc_error_t err;
  memset(&err, 0, sizeof err);
  prom_t *prom = prom_parse((const char *)data, size, &err);
  if (prom == NULL) {
    if (err.msg[0] == '\0') broken("a refused scrape without an error message");
    return 0;
  }
  size_t n = prom_sample_count(prom);
  for (size_t i = 0; i < n; i++) {
    const prom_sample_t *s = prom_sample_at(prom, i);
    if (s == NULL || s->name == NULL) broken("a sample without a name");
    for (size_t l = 0; l < s->label_count; l++) {
      if (s->labels[l].name == NULL || s->labels[l].value == NULL) broken("a label without text");
      if (prom_sample_label(s, s->labels[l].name) == NULL) broken("a label not found by name");
    }
    (void)prom_type_of(prom, s->name);
    (void)prom_help_of(prom, s->name);
    prom_match_t match = {.name = s->label_count ? s->labels[0].name : "name",
                          .value = s->label_count ? s->labels[0].value : "x"};
    if (s->label_count > 0 && prom_find(prom, s->name, &match, 1) == NULL)
      broken("a sample not found by its own name and first label");
    size_t found = 0;
    (void)prom_sum(prom, s->name, &match, s->label_count ? 1 : 0, &found);
    if (found == 0) broken("a sample's own name sums over nothing");
  }
  prom_destroy(prom);
  return 0;
}
