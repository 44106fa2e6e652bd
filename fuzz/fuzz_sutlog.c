/* Fuzz target: the SUT log line parser (harness/sutlog.h), on log text as a SUT could
 * write it: every line through both formats (synapse-text, json-lines). Each visited
 * record must be self-consistent. Crashes, sanitizer reports and broken invariants
 * (abort) are findings. Built with libFuzzer when REPLCHECK_FUZZ=ON;
 * tests/test_fuzz_corpora.c calls the same entry (FUZZ_ENTRY) on tests/fuzz/sutlog/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sutlog.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void broken(const char *what) {
  fprintf(stderr, "fuzz_sutlog: invariant broken: %s\n", what);
  abort();
}

static bool visit(const sutlog_record_t *r, void *arg) { /* arg: the profile */
  if (r->line == NULL || r->logger == NULL || r->level == NULL || r->context == NULL ||
      r->message == NULL)
    broken("a record with a missing field");
  volatile size_t touch = strlen(r->line) + strlen(r->logger) + strlen(r->level) +
                          strlen(r->context) + strlen(r->message);
  (void)touch;
  if (!r->is_record && (r->logger[0] || r->level[0] || r->message[0]))
    broken("a continuation line with record fields");
  if (r->why_not == NULL || (r->is_record ? r->why_not[0] != '\0' : r->why_not[0] == '\0'))
    broken("a record with a reason not to be one, or a continuation without one");
  long long ms;
  (void)sutlog_record_time_ms(arg, r, &ms);
  (void)sutlog_is_sentinel(r->context);
  return false;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
  static profile_t text = {.log_format = PROFILE_LOG_SYNAPSE_TEXT};
  static profile_t json = {.log_format = PROFILE_LOG_JSON_LINES, .log_context_field = "request"};
  const char *buf = (const char *)data;
  size_t at = 0;
  while (at < size) {
    const char *lf = memchr(buf + at, '\n', size - at);
    size_t len = lf != NULL ? (size_t)(lf - (buf + at)) : size - at;
    sutlog_parse_line(&text, buf + at, len, (long)at, visit, &text);
    sutlog_parse_line(&json, buf + at, len, (long)at, visit, &json);
    at += len + 1;
  }
  return 0;
}
