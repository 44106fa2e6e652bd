/* passive_logcontext: LC-03 and LC-04 over the SUT's log (see passive.h). The texts are
 * Synapse's format strings (seed-behaviours.md §1.2, §1.3); "%s" and "%r" stand for any
 * text, the rest must match exactly, the whole message. */
#include <stdio.h>
#include <string.h>

#include "passive.h"
#include "sutlog.h"

#define PASSIVE_LOG_MAX_BYTES (64u * 1024u * 1024u)

/* Era bounds as major*10000 + minor*100 + patch. */
#define ERA(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))
#define ERA_ANY 9999999

typedef struct lc_text {
  const char *format;
  int from; /* first era that logs it (at WARNING) */
  int until; /* first era that no longer does */
} lc_text_t;

static const lc_text_t LC03_TEXTS[] = {
    {"Starting db txn %s from sentinel context", ERA(0, 33, 2), ERA_ANY},
    {"Starting db connection from sentinel context: metrics will be lost", ERA(0, 33, 2), ERA_ANY},
};

static const lc_text_t LC04_TEXTS[] = {
    {"Unexpected logging context: %s is not %s", ERA(0, 29, 0), ERA(1, 0, 0)},
    {"Expected logging context %s has been lost", ERA(0, 29, 0), ERA(1, 0, 0)},
    {"Current logging context %s is not expected context %s", ERA(0, 29, 0), ERA(1, 0, 0)},
    {"Expected previous context %r, found %r", ERA(0, 29, 0), ERA(1, 0, 0)},
    {"Started logcontext %s on different thread", ERA(0, 30, 0), ERA(1, 0, 0)},
    {"Stopped logcontext %s on different thread", ERA(0, 30, 0), ERA(1, 0, 0)},
    {"Called stop on logcontext %s without calling start", ERA(0, 30, 0), ERA(1, 0, 0)},
    {"Expected logging context %s was lost", ERA(1, 0, 0), ERA_ANY},
    {"Expected logging context %s but found %s", ERA(1, 0, 0), ERA_ANY},
    {"Re-starting finished log context %s", ERA(1, 13, 0), ERA_ANY},
};

static int profile_era(const profile_t *profile) {
  return ERA(profile->era_major, profile->era_minor, profile->era_patch);
}

bool passive_format_matches(const char *format, const char *message) {
  /* Wildcard matching where "%s"/"%r" are the stars: remember the last star and retry
   * from one character further on a mismatch (linear backtracking, no recursion). */
  const char *f = format, *m = message, *star = NULL, *resume = NULL;
  while (*m != '\0') {
    if (f[0] == '%' && (f[1] == 's' || f[1] == 'r')) {
      star = f += 2;
      resume = m;
    } else if (*f != '\0' && *f == *m) {
      f++;
      m++;
    } else if (star != NULL) {
      f = star;
      m = ++resume;
    } else {
      return false;
    }
  }
  while (f[0] == '%' && (f[1] == 's' || f[1] == 'r')) f += 2;
  return *f == '\0';
}

static const char *match_texts(const lc_text_t *texts, size_t n, int era, const char *message) {
  for (size_t i = 0; i < n; i++)
    if (era >= texts[i].from && era < texts[i].until &&
        passive_format_matches(texts[i].format, message))
      return texts[i].format;
  return NULL;
}

const char *passive_logcontext_rule(const profile_t *profile, const sutlog_record_t *record) {
  if (!record->is_record) return NULL;
  int era = profile_era(profile);
  if (match_texts(LC03_TEXTS, sizeof LC03_TEXTS / sizeof LC03_TEXTS[0], era, record->message))
    return "LC-03";
  /* At DEBUG, Synapse logs every transaction's start; one in the sentinel is LC-03 too. */
  if (era >= ERA(0, 33, 2) && strncmp(record->message, "[TXN START]", 11) == 0 &&
      sutlog_is_sentinel(record->context))
    return "LC-03";
  if (match_texts(LC04_TEXTS, sizeof LC04_TEXTS / sizeof LC04_TEXTS[0], era, record->message))
    return "LC-04";
  return NULL;
}

static long long earliest(long long a, long long b) {
  if (a < 0) return b;
  if (b < 0) return a;
  return a < b ? a : b;
}

long long passive_lc04_until_ms(long long first_close_ms, bool closed_by_sut,
                                long long sigterm_ms, long long body_end_ms) {
  /* The SIGTERM and body end are the harness's own acts, timed before they happen; the
   * SUT's close is seen after the fact, and even the mock's own is timed only to the ms. */
  long long slack = closed_by_sut ? PASSIVE_LC04_CLOSE_SLACK_MS : PASSIVE_LC04_CLOCK_SLACK_MS;
  long long close_edge = first_close_ms < 0 ? -1 : first_close_ms - slack;
  if (close_edge < 0 && first_close_ms >= 0) close_edge = 0;
  return earliest(earliest(close_edge, sigterm_ms), body_end_ms);
}

typedef struct lc_scan {
  const profile_t *profile;
  long long lc04_until_ms;
  const char *rule;
  char line[320];
} lc_scan_t;

static bool lc_violation(const sutlog_record_t *r, void *arg) {
  lc_scan_t *s = arg;
  const char *rule = passive_logcontext_rule(s->profile, r);
  if (rule == NULL) return false;
  if (strcmp(rule, "LC-04") == 0 && s->lc04_until_ms >= 0) {
    /* After the first disconnect or SIGTERM it is LC-05's (SHOULD), checked by the
     * logcontext suite; a line without a readable time counts. */
    long long at;
    if (sutlog_record_time_ms(s->profile, r, &at) && at > s->lc04_until_ms) return false;
  }
  s->rule = rule;
  snprintf(s->line, sizeof s->line, "%.300s", r->line);
  return true;
}

bool passive_check_logcontext(const char *log_file, const profile_t *profile,
                              long long lc04_until_ms, char *why, size_t cap) {
  if (log_file == NULL) return true;
  lc_scan_t s = {.profile = profile, .lc04_until_ms = lc04_until_ms};
  long offset = 0;
  if (!sutlog_scan(profile, log_file, &offset, PASSIVE_LOG_MAX_BYTES, lc_violation, &s))
    return true;
  if (strcmp(s.rule, "LC-03") == 0)
    snprintf(why, cap, "LC-03: the SUT started a database transaction or connection in the "
                       "sentinel context: '%s' (%s)",
             s.line, log_file);
  else
    snprintf(why, cap, "LC-04: the SUT logged a logcontext mismatch warning: '%s' (%s)", s.line,
             log_file);
  return false;
}
