/* prom: a parser for the Prometheus text exposition format (version 0.0.4), as scraped
 * from a SUT's metrics endpoint, and lookups over the samples.
 *
 * Accepts what prometheus_client and Synapse write: `# HELP name text` and
 * `# TYPE name type` lines (other `#` lines are comments), samples
 * `name{label="value",...} value [timestamp]` with label values escaped by \\, \" and
 * \n, values such as 1, -2.5e3, NaN, +Inf, -Inf, and a timestamp in milliseconds.
 * Blank lines and a CR before the LF are tolerated. The text is untrusted: any byte
 * sequence gives either a result or an error naming the line, the column and what was
 * expected ("line 12, column 30: expected '=' after label name 'name', got '}'"),
 * never a crash, and never a read outside [text, text + len) (no NUL needed).
 *
 * Counters may be exposed with or without the `_total` suffix (prometheus_client
 * before and after 0.4, spec freedom F-16): the lookups take a base name and find
 * `x` or `x_total`.
 *
 * Ownership: prom_t owns every string and sample in it; free with prom_destroy().
 * Read-only after parsing, no global state: thread-safe. */
#ifndef PROM_H
#define PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_error.h"

typedef struct prom_label {
  char *name;
  char *value; /* unescaped */
} prom_label_t;

typedef struct prom_sample {
  char *name;           /* as written: "synapse_background_process_start_count_total" */
  prom_label_t *labels; /* in the order written */
  size_t label_count;
  double value; /* NaN and infinities as parsed */
  bool has_timestamp;
  int64_t timestamp_ms;
  size_t line; /* 1-based line number in the scraped text */
} prom_sample_t;

typedef struct prom prom_t;

/* Parses len bytes of text. Returns the result, or NULL with err filled
 * ("line N, column C: ..."). An empty text is a valid, empty result. */
prom_t *prom_parse(const char *text, size_t len, rc_error_t *err);
/* Frees everything. NULL is fine. */
void prom_destroy(prom_t *prom);

size_t prom_sample_count(const prom_t *prom);
/* The i-th sample in text order (i < prom_sample_count). */
const prom_sample_t *prom_sample_at(const prom_t *prom, size_t i);

/* The value of label `name` of a sample, or NULL if it has no such label. */
const char *prom_sample_label(const prom_sample_t *sample, const char *name);

/* The declared type ("counter", "gauge", ...) of the family a sample name belongs to:
 * its own # TYPE line, or that of its base name for the suffixes _total, _count, _sum,
 * _bucket, _created. NULL when undeclared. */
const char *prom_type_of(const prom_t *prom, const char *sample_name);
/* The # HELP text of a family (unescaped), or NULL. */
const char *prom_help_of(const prom_t *prom, const char *family);

/* A label condition for lookups: the sample must have label `name` equal to `value`. */
typedef struct prom_match {
  const char *name;
  const char *value;
} prom_match_t;

/* True if sample_name is `metric` or its `_total` twin (`metric` minus or plus the
 * suffix). */
bool prom_name_matches(const char *sample_name, const char *metric);

/* The first sample named `metric` (or its _total twin) whose labels include every
 * condition in match[0..match_count), or NULL. Extra labels on the sample do not
 * matter (F-16: server_name, reason, ...). */
const prom_sample_t *prom_find(const prom_t *prom, const char *metric, const prom_match_t *match,
                               size_t match_count);

/* Sums the values of every sample prom_find would consider a match; *found gets how
 * many there were (may be NULL). 0 when none. */
double prom_sum(const prom_t *prom, const char *metric, const prom_match_t *match,
                size_t match_count, size_t *found);

#endif
