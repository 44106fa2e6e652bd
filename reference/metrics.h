/* metrics: refworker's Prometheus registry and its text exposition (format 0.0.4).
 *
 * Holds metric families (a name, a type, a help text, label names) and their series
 * (label values and one number each), and renders them the way the Python
 * prometheus_client of the emulated Synapse era did (spec seed-behaviours §1.4, §1.6):
 *   - METRICS_STYLE_2018 (prometheus_client < 0.4, pinned by Synapse v0.33.6): a counter's
 *     samples carry the family name as is ("synapse_background_process_start_count");
 *   - METRICS_STYLE_MODERN (>= 0.4): the family name without "_total" in the HELP/TYPE
 *     lines and "<name>_total" on the samples.
 * Values are printed like prometheus_client prints floats ("3.0", "0.5"). Families come
 * out in registration order, series in creation order; a series once created keeps
 * reporting (a gauge at 0 when idle).
 *
 * Ownership: the registry owns families and series; the pointers it hands out stay
 * valid until metrics_destroy. Single-threaded: no locking. */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>

#include "rc_error.h"

typedef enum metrics_style {
  METRICS_STYLE_2018 = 1,
  METRICS_STYLE_MODERN,
} metrics_style_t;

typedef enum metrics_type {
  METRICS_COUNTER = 1,
  METRICS_GAUGE,
} metrics_type_t;

typedef struct metrics metrics_t;
typedef struct metrics_family metrics_family_t;
typedef struct metrics_series metrics_series_t;

/* Most labels a family may declare. */
#define METRICS_MAX_LABELS 4

/* The Content-Type of the rendered text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

metrics_t *metrics_create(metrics_style_t style, rc_error_t *err);
/* Frees the registry, its families and series. NULL is fine. */
void metrics_destroy(metrics_t *metrics);

metrics_style_t metrics_style(const metrics_t *metrics);

/* Declares a family, or returns the one already declared under that name when type and
 * label names match. A counter's name is given without "_total". Names must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*. Returns NULL with err
 * filled on a bad or conflicting declaration or when memory runs out. */
metrics_family_t *metrics_family_declare(metrics_t *metrics, const char *name, metrics_type_t type,
                                         const char *help, const char *const *label_names,
                                         size_t label_count, rc_error_t *err);

/* The series with these label values (one per declared label, in order), created at 0
 * on first use. Values may be any UTF-8 text (escaped on output). Returns NULL when
 * memory runs out or the count is wrong (err filled). */
metrics_series_t *metrics_series_get(metrics_family_t *family, const char *const *label_values,
                                     size_t label_count, rc_error_t *err);

/* Adds delta (a counter only goes up: a negative delta on a counter is ignored). */
void metrics_series_add(metrics_series_t *series, double delta);
/* Sets a gauge (ignored for a counter). */
void metrics_series_set(metrics_series_t *series, double value);
double metrics_series_value(const metrics_series_t *series);

/* Looks a series up without creating it: NULL when the family or series does not exist.
 * For tests and diagnostics. */
const metrics_series_t *metrics_series_find(const metrics_t *metrics, const char *family_name,
                                            const char *const *label_values, size_t label_count);

/* Renders every family as Prometheus text; returns a malloc'd NUL-terminated string
 * (its length in *len when len is not NULL), or NULL when memory runs out. */
char *metrics_render(const metrics_t *metrics, size_t *len);

#endif
