/* report: the run's results, independent of any output format.
 *
 * The runner fills one report_t per run (one report_case_t per selected test); the
 * writers (junit.h, and later HTML/JSON) only read it. All strings are owned by the
 * report and freed by report_destroy(); setters copy their argument. Single-threaded:
 * build and write a report from one thread. */
#ifndef REPORT_H
#define REPORT_H

#include <stddef.h>

typedef enum verdict {
  VERDICT_PASS = 0,
  VERDICT_FAIL,       /* a MUST not met, or a SHOULD under --strict */
  VERDICT_NON_STRICT, /* a SHOULD not met; counts as passed unless --strict */
  VERDICT_SKIP,       /* not applicable, opted out or filtered; reason in message */
  VERDICT_XFAIL,      /* failed, and listed as expected to fail */
  VERDICT_XPASS,      /* listed as expected to fail, but passed */
  VERDICT_ERROR,      /* harness or set-up problem: SUT never ready, port not bound, crash */
  VERDICT_COUNT
} verdict_t;

/* "PASS", "FAIL", ... (upper case, as shown in progress lines and reports). */
const char *verdict_name(verdict_t v);
/* Parses verdict_name() output; returns 0 or -1. */
int verdict_from_name(const char *name, verdict_t *out);

typedef struct report_property {
  char *name;
  char *value;
} report_property_t;

typedef struct report_case {
  char *id;           /* stable test id, e.g. "protocol/handshake/name-first" */
  char *area;         /* first id segment, e.g. "protocol" (JUnit classname) */
  char *requirements; /* requirement ids, comma-separated: "HS-01,HS-02" */
  char *requirement;  /* the requirement in one sentence */
  char *source;       /* upstream source it encodes (file@version, PR) */
  char *file;         /* source file of the test (suite C file or fixture), repo-relative */
  int line;           /* line in that file, 0 if unknown */
  verdict_t verdict;
  double seconds;     /* wall time of the test */
  char *message;      /* one line: failure summary, skip reason, error cause */
  char *expected;     /* failure: what the requirement expects */
  char *actual;       /* failure: what was observed */
  char *evidence;     /* multi-line: last ledger lines, log lines, metric values */
  char *output;       /* multi-line: the SUT's own output excerpt (system-out) */
} report_case_t;

typedef struct report {
  char *name;         /* suite name shown by CI, e.g. "replcheck" */
  char *timestamp;    /* start, UTC "YYYY-MM-DDTHH:MM:SS" */
  char *hostname;
  double seconds;     /* wall time of the whole run */
  int strict;         /* run under --strict: writers turn NON_STRICT and XPASS into failures */
  report_property_t *properties;
  size_t property_count;
  report_case_t *cases;
  size_t case_count;
  size_t case_capacity;
} report_t;

/* Creates an empty report named `name` (NULL: "replcheck"), timestamped now (UTC),
 * hostname filled ("localhost" if unknown). Returns NULL only on allocation failure. */
report_t *report_create(const char *name);
/* Frees the report and every string it holds. NULL is fine. */
void report_destroy(report_t *report);
/* Appends a run-level property (profile, dialect, transport, sut_command, ...). */
int report_add_property(report_t *report, const char *name, const char *value);
/* Appends a zeroed case and returns it; the pointer stays valid until the next
 * report_add_case() call. Returns NULL on allocation failure. */
report_case_t *report_add_case(report_t *report);
/* Replaces *field with a copy of value (NULL clears it). Returns 0 or -1. */
int report_set(char **field, const char *value);
/* Counts cases with the given verdict. */
size_t report_count(const report_t *report, verdict_t verdict);

#endif
