#include "bgprocess.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wlog.h"

#define START_COUNT_METRIC "synapse_background_process_start_count"
#define IN_FLIGHT_METRIC "synapse_background_process_in_flight_count"
#define DB_TXN_METRIC "synapse_background_process_db_txn_count"
#define SENTINEL "sentinel"

/* Everything known about one desc: its run counter and its three series. */
typedef struct bg_name {
  char *desc;
  unsigned long next_run;
  metrics_series_t *starts;
  metrics_series_t *in_flight;
  metrics_series_t *db_txns;
  struct bg_name *next;
} bg_name_t;

/* A handler exception waiting to be "garbage-collected" (BUG_UNHANDLED_BACKGROUND_ERROR). */
typedef struct pending_report {
  bgprocess_table_t *table;
  struct event *timer;
  char *traceback;
  struct pending_report *next;
} pending_report_t;

struct bgprocess_table {
  struct event_base *base;
  bug_set_t bugs;
  metrics_family_t *starts;
  metrics_family_t *in_flight;
  metrics_family_t *db_txns;
  bg_name_t *names;
  pending_report_t *reports;
};

struct bgprocess {
  bg_name_t *name;
  bool counted;         /* still in the in-flight count */
  bool leave_on_return; /* BUG_FIRE_AND_FORGET: uncounted when the handler returns */
  bool stays_in_flight; /* BUG_CACHE_PRUNE_STAYS_IN_FLIGHT: never uncounted */
  char context[256];
};

bgprocess_table_t *bgprocess_table_create(struct event_base *base, metrics_t *metrics,
                                          bug_set_t bugs, rc_error_t *err) {
  static const char *const labels[] = {"name"};
  bgprocess_table_t *table = calloc(1, sizeof *table);
  if (table == NULL) {
    rc_error_set(err, "background processes: out of memory");
    return NULL;
  }
  table->base = base;
  table->bugs = bugs;
  table->starts = metrics_family_declare(metrics, START_COUNT_METRIC, METRICS_COUNTER,
                                         "Number of background processes started", labels, 1, err);
  if (table->starts != NULL)
    table->in_flight =
        metrics_family_declare(metrics, IN_FLIGHT_METRIC, METRICS_GAUGE,
                               "Number of background processes in flight", labels, 1, err);
  if (table->in_flight != NULL)
    table->db_txns = metrics_family_declare(metrics, DB_TXN_METRIC, METRICS_COUNTER,
                                            "Number of database transactions run by background "
                                            "processes",
                                            labels, 1, err);
  if (table->db_txns == NULL) {
    free(table);
    return NULL;
  }
  return table;
}

static void pending_report_free(pending_report_t *report) {
  if (report == NULL) return;
  if (report->timer != NULL) event_free(report->timer);
  free(report->traceback);
  free(report);
}

void bgprocess_table_destroy(bgprocess_table_t *table) {
  if (table == NULL) return;
  while (table->names != NULL) {
    bg_name_t *name = table->names;
    table->names = name->next;
    free(name->desc);
    free(name);
  }
  while (table->reports != NULL) {
    pending_report_t *report = table->reports;
    table->reports = report->next;
    pending_report_free(report);
  }
  free(table);
}

static bg_name_t *name_find(const bgprocess_table_t *table, const char *desc) {
  for (bg_name_t *name = table->names; name != NULL; name = name->next)
    if (strcmp(name->desc, desc) == 0) return name;
  return NULL;
}

static bg_name_t *name_get(bgprocess_table_t *table, const char *desc) {
  bg_name_t *name = name_find(table, desc);
  if (name != NULL) return name;
  name = calloc(1, sizeof *name);
  if (name == NULL || (name->desc = strdup(desc)) == NULL) {
    free(name);
    return NULL;
  }
  const char *values[] = {desc};
  name->starts = metrics_series_get(table->starts, values, 1, NULL);
  name->in_flight = metrics_series_get(table->in_flight, values, 1, NULL);
  name->db_txns = metrics_series_get(table->db_txns, values, 1, NULL);
  if (name->starts == NULL || name->in_flight == NULL || name->db_txns == NULL) {
    free(name->desc);
    free(name);
    return NULL;
  }
  name->next = table->names;
  table->names = name;
  return name;
}

bgprocess_t *bgprocess_start(bgprocess_table_t *table, bgprocess_kind_t kind, const char *desc) {
  if (table == NULL) return NULL;
  bgprocess_t *run = calloc(1, sizeof *run);
  if (run == NULL) return NULL;
  if (kind == BGPROCESS_HANDLER && bugs_has(table->bugs, BUG_HANDLERS_NOT_BACKGROUND)) {
    /* Pre-#3709: the handler is called straight from the reactor, in its context. */
    snprintf(run->context, sizeof run->context, SENTINEL);
    return run;
  }
  bg_name_t *name = name_get(table, desc);
  if (name == NULL) {
    free(run);
    return NULL;
  }
  run->name = name;
  run->counted = true;
  run->leave_on_return = kind == BGPROCESS_HANDLER && bugs_has(table->bugs, BUG_FIRE_AND_FORGET);
  run->stays_in_flight =
      kind == BGPROCESS_REAPER && bugs_has(table->bugs, BUG_CACHE_PRUNE_STAYS_IN_FLIGHT);
  snprintf(run->context, sizeof run->context, "%s-%lu", desc, name->next_run++);
  metrics_series_add(name->starts, 1);
  metrics_series_add(name->in_flight, 1);
  return run;
}

void bgprocess_enter(const bgprocess_t *run) {
  if (run == NULL)
    wlog_context_reset();
  else
    wlog_context_enter(run->context);
}

const char *bgprocess_context(const bgprocess_t *run) {
  return run != NULL ? run->context : SENTINEL;
}

const char *bgprocess_desc(const bgprocess_t *run) {
  return run != NULL && run->name != NULL ? run->name->desc : NULL;
}

static void run_uncount(bgprocess_t *run) {
  if (!run->counted) return;
  run->counted = false;
  metrics_series_add(run->name->in_flight, -1);
}

void bgprocess_returned(bgprocess_t *run) {
  /* Before #3709 a handler fired its work off and returned None: the process was over
   * as far as anyone could tell while the work went on under its log context. */
  if (run != NULL && run->leave_on_return) run_uncount(run);
}

void bgprocess_finish(bgprocess_t *run) {
  if (run == NULL) return;
  if (!run->stays_in_flight) run_uncount(run);
  free(run);
}

void bgprocess_charge_db_txn(bgprocess_table_t *table, const char *context) {
  if (table == NULL || context == NULL || bugs_has(table->bugs, BUG_DB_TXN_NOT_CHARGED)) return;
  /* "<desc>-<n>": the desc is everything before the last '-', n all digits. */
  const char *dash = strrchr(context, '-');
  if (dash == NULL || dash == context || dash[1] == '\0' ||
      strspn(dash + 1, "0123456789") != strlen(dash + 1))
    return;
  char desc[256];
  if ((size_t)(dash - context) >= sizeof desc) return;
  snprintf(desc, sizeof desc, "%.*s", (int)(dash - context), context);
  bg_name_t *name = name_find(table, desc);
  if (name != NULL) metrics_series_add(name->db_txns, 1);
}

/* ---- exceptions ------------------------------------------------------------------ */

static void unlink_report(pending_report_t *report) {
  for (pending_report_t **p = &report->table->reports; *p != NULL; p = &(*p)->next) {
    if (*p == report) {
      *p = report->next;
      return;
    }
  }
}

/* Twisted's _DebugInfo.__del__: two CRITICAL events on logger "twisted", the second
 * carrying the failure. Runs from the event loop, so the context is whatever the loop
 * has (the sentinel), not the failed process's. */
static void report_fire(evutil_socket_t fd, short what, void *arg) {
  wlog_callback_begin();
  (void)fd;
  (void)what;
  pending_report_t *report = arg;
  wlog_write("twisted", __LINE__, WLOG_LEVEL_CRITICAL, "Unhandled error in Deferred:");
  wlog_write_detail("twisted", __LINE__, WLOG_LEVEL_CRITICAL, report->traceback, "%s", "");
  unlink_report(report);
  pending_report_free(report);
}

static void report_later(bgprocess_table_t *table, const char *traceback) {
  pending_report_t *report = calloc(1, sizeof *report);
  if (report == NULL) return;
  report->table = table;
  report->traceback = strdup(traceback);
  report->timer = evtimer_new(table->base, report_fire, report);
  struct timeval delay = {.tv_sec = BGPROCESS_UNHANDLED_DELAY_MS / 1000,
                          .tv_usec = (BGPROCESS_UNHANDLED_DELAY_MS % 1000) * 1000};
  if (report->traceback == NULL || report->timer == NULL ||
      evtimer_add(report->timer, &delay) != 0) {
    pending_report_free(report);
    return;
  }
  report->next = table->reports;
  table->reports = report;
}

static void log_now(const char *logger, int lineno, const char *traceback, const char *fmt,
                    va_list ap) {
  char message[RC_ERROR_MAX + 256];
  vsnprintf(message, sizeof message, fmt, ap);
  wlog_write_detail(logger, lineno, WLOG_LEVEL_ERROR, traceback, "%s", message);
}

void bgprocess_report_exception(bgprocess_table_t *table, const char *logger, int lineno,
                                const handler_error_t *error, const char *fmt, ...) {
  char traceback[RC_ERROR_MAX + 512];
  handler_error_traceback(error, traceback, sizeof traceback);
  if (table != NULL && bugs_has(table->bugs, BUG_UNHANDLED_BACKGROUND_ERROR)) {
    report_later(table, traceback);
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  log_now(logger, lineno, traceback, fmt, ap);
  va_end(ap);
}

void bgprocess_report_reraised(bgprocess_table_t *table, const char *logger, int lineno,
                               const handler_error_t *error, const char *fmt, ...) {
  if (table != NULL && bugs_has(table->bugs, BUG_UNHANDLED_BACKGROUND_ERROR)) return;
  char traceback[RC_ERROR_MAX + 512];
  handler_error_traceback(error, traceback, sizeof traceback);
  va_list ap;
  va_start(ap, fmt);
  log_now(logger, lineno, traceback, fmt, ap);
  va_end(ap);
}

double bgprocess_start_count(const bgprocess_table_t *table, const char *desc) {
  const bg_name_t *name = name_find(table, desc);
  return name != NULL ? metrics_series_value(name->starts) : 0.0;
}

double bgprocess_in_flight(const bgprocess_table_t *table, const char *desc) {
  const bg_name_t *name = name_find(table, desc);
  return name != NULL ? metrics_series_value(name->in_flight) : 0.0;
}

double bgprocess_db_txn_count(const bgprocess_table_t *table, const char *desc) {
  const bg_name_t *name = name_find(table, desc);
  return name != NULL ? metrics_series_value(name->db_txns) : 0.0;
}
