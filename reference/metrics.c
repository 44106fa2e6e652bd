#include "metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metrics_series {
  char *values[METRICS_MAX_LABELS];
  double value;
  bool counter;
};

struct metrics_family {
  char *name;
  char *help;
  metrics_type_t type;
  char *labels[METRICS_MAX_LABELS];
  size_t label_count;
  metrics_series_t **series;
  size_t series_count;
  size_t series_cap;
};

struct metrics {
  metrics_style_t style;
  metrics_family_t **families;
  size_t family_count;
  size_t family_cap;
};

metrics_t *metrics_create(metrics_style_t style, rc_error_t *err) {
  if (style != METRICS_STYLE_2018 && style != METRICS_STYLE_MODERN) {
    rc_error_set(err, "metrics: unknown exposition style %d", (int)style);
    return NULL;
  }
  metrics_t *metrics = calloc(1, sizeof *metrics);
  if (metrics == NULL) {
    rc_error_set(err, "metrics: out of memory");
    return NULL;
  }
  metrics->style = style;
  return metrics;
}

static void series_free(metrics_series_t *series, size_t label_count) {
  if (series == NULL) return;
  for (size_t i = 0; i < label_count; i++) free(series->values[i]);
  free(series);
}

static void family_free(metrics_family_t *family) {
  if (family == NULL) return;
  for (size_t i = 0; i < family->series_count; i++)
    series_free(family->series[i], family->label_count);
  free(family->series);
  for (size_t i = 0; i < family->label_count; i++) free(family->labels[i]);
  free(family->name);
  free(family->help);
  free(family);
}

void metrics_destroy(metrics_t *metrics) {
  if (metrics == NULL) return;
  for (size_t i = 0; i < metrics->family_count; i++) family_free(metrics->families[i]);
  free(metrics->families);
  free(metrics);
}

metrics_style_t metrics_style(const metrics_t *metrics) {
  return metrics->style;
}

static bool name_valid(const char *name, bool colon_allowed) {
  if (name == NULL || name[0] == '\0') return false;
  for (const char *p = name; *p != '\0'; p++) {
    char c = *p;
    bool letter =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_allowed && c == ':');
    bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && p != name)) return false;
  }
  return true;
}

static metrics_family_t *family_find(const metrics_t *metrics, const char *name) {
  for (size_t i = 0; i < metrics->family_count; i++)
    if (strcmp(metrics->families[i]->name, name) == 0) return metrics->families[i];
  return NULL;
}

static bool family_matches(const metrics_family_t *family, metrics_type_t type,
                           const char *const *label_names, size_t label_count) {
  if (family->type != type || family->label_count != label_count) return false;
  for (size_t i = 0; i < label_count; i++)
    if (strcmp(family->labels[i], label_names[i]) != 0) return false;
  return true;
}

metrics_family_t *metrics_family_declare(metrics_t *metrics, const char *name, metrics_type_t type,
                                         const char *help, const char *const *label_names,
                                         size_t label_count, rc_error_t *err) {
  if (!name_valid(name, true)) {
    rc_error_set(err, "metrics: '%s' is not a valid metric name", name != NULL ? name : "");
    return NULL;
  }
  if (type != METRICS_COUNTER && type != METRICS_GAUGE) {
    rc_error_set(err, "metrics: %s: unknown type %d", name, (int)type);
    return NULL;
  }
  if (label_count > METRICS_MAX_LABELS) {
    rc_error_set(err, "metrics: %s: %zu labels, at most %d", name, label_count, METRICS_MAX_LABELS);
    return NULL;
  }
  for (size_t i = 0; i < label_count; i++) {
    if (!name_valid(label_names[i], false)) {
      rc_error_set(err, "metrics: %s: '%s' is not a valid label name", name,
                   label_names[i] != NULL ? label_names[i] : "");
      return NULL;
    }
  }
  metrics_family_t *existing = family_find(metrics, name);
  if (existing != NULL) {
    if (family_matches(existing, type, label_names, label_count)) return existing;
    rc_error_set(err, "metrics: %s is already declared with another type or labels", name);
    return NULL;
  }
  if (metrics->family_count == metrics->family_cap) {
    size_t cap = metrics->family_cap == 0 ? 8 : metrics->family_cap * 2;
    metrics_family_t **grown = realloc(metrics->families, cap * sizeof *grown);
    if (grown == NULL) {
      rc_error_set(err, "metrics: %s: out of memory", name);
      return NULL;
    }
    metrics->families = grown;
    metrics->family_cap = cap;
  }
  metrics_family_t *family = calloc(1, sizeof *family);
  bool ok = family != NULL && (family->name = strdup(name)) != NULL &&
            (family->help = strdup(help != NULL ? help : "")) != NULL;
  for (size_t i = 0; ok && i < label_count; i++) {
    family->labels[i] = strdup(label_names[i]);
    if (family->labels[i] == NULL) ok = false;
    family->label_count = i + 1;
  }
  if (!ok) {
    family_free(family);
    rc_error_set(err, "metrics: %s: out of memory", name);
    return NULL;
  }
  family->type = type;
  metrics->families[metrics->family_count++] = family;
  return family;
}

static metrics_series_t *series_find(const metrics_family_t *family,
                                     const char *const *label_values) {
  for (size_t s = 0; s < family->series_count; s++) {
    metrics_series_t *series = family->series[s];
    size_t i = 0;
    while (i < family->label_count && strcmp(series->values[i], label_values[i]) == 0) i++;
    if (i == family->label_count) return series;
  }
  return NULL;
}

metrics_series_t *metrics_series_get(metrics_family_t *family, const char *const *label_values,
                                     size_t label_count, rc_error_t *err) {
  if (label_count != family->label_count) {
    rc_error_set(err, "metrics: %s takes %zu label values, got %zu", family->name,
                 family->label_count, label_count);
    return NULL;
  }
  for (size_t i = 0; i < label_count; i++) {
    if (label_values[i] == NULL) {
      rc_error_set(err, "metrics: %s: label %s has no value", family->name, family->labels[i]);
      return NULL;
    }
  }
  metrics_series_t *series = series_find(family, label_values);
  if (series != NULL) return series;
  if (family->series_count == family->series_cap) {
    size_t cap = family->series_cap == 0 ? 4 : family->series_cap * 2;
    metrics_series_t **grown = realloc(family->series, cap * sizeof *grown);
    if (grown == NULL) {
      rc_error_set(err, "metrics: %s: out of memory", family->name);
      return NULL;
    }
    family->series = grown;
    family->series_cap = cap;
  }
  series = calloc(1, sizeof *series);
  bool ok = series != NULL;
  size_t copied = 0;
  for (; ok && copied < label_count; copied++)
    if ((series->values[copied] = strdup(label_values[copied])) == NULL) ok = false;
  if (!ok) {
    series_free(series, copied);
    rc_error_set(err, "metrics: %s: out of memory", family->name);
    return NULL;
  }
  series->counter = family->type == METRICS_COUNTER;
  family->series[family->series_count++] = series;
  return series;
}

void metrics_series_add(metrics_series_t *series, double delta) {
  if (series == NULL || (series->counter && delta < 0)) return;
  series->value += delta;
}

void metrics_series_set(metrics_series_t *series, double value) {
  if (series == NULL || series->counter) return;
  series->value = value;
}

double metrics_series_value(const metrics_series_t *series) {
  return series != NULL ? series->value : 0.0;
}

const metrics_series_t *metrics_series_find(const metrics_t *metrics, const char *family_name,
                                            const char *const *label_values, size_t label_count) {
  const metrics_family_t *family = family_find(metrics, family_name);
  if (family == NULL || family->label_count != label_count) return NULL;
  return series_find(family, label_values);
}

/* ---- exposition ------------------------------------------------------------------ */

/* A number the way prometheus_client writes it: Python's repr of a float, so integral
 * values read "3.0" and others use the shortest text that reads back the same. */
static void format_value(double value, char *buf, size_t cap) {
  if (isnan(value)) {
    snprintf(buf, cap, "NaN");
  } else if (isinf(value)) {
    snprintf(buf, cap, value > 0 ? "+Inf" : "-Inf");
  } else if (value == floor(value) && fabs(value) < 1e16) {
    snprintf(buf, cap, "%.1f", value);
  } else {
    for (int precision = 15; precision <= 17; precision++) {
      snprintf(buf, cap, "%.*g", precision, value);
      if (strtod(buf, NULL) == value) break;
    }
  }
}

/* HELP text escapes: backslash and newline. Label values also escape the double quote. */
static void write_escaped(FILE *out, const char *text, bool quote) {
  for (const char *p = text; *p != '\0'; p++) {
    if (*p == '\\')
      fputs("\\\\", out);
    else if (*p == '\n')
      fputs("\\n", out);
    else if (quote && *p == '"')
      fputs("\\\"", out);
    else
      fputc(*p, out);
  }
}

static void render_family(const metrics_t *metrics, const metrics_family_t *family, FILE *out) {
  bool counter = family->type == METRICS_COUNTER;
  fprintf(out, "# HELP %s ", family->name);
  write_escaped(out, family->help, false);
  fprintf(out, "\n# TYPE %s %s\n", family->name, counter ? "counter" : "gauge");
  const char *suffix = counter && metrics->style == METRICS_STYLE_MODERN ? "_total" : "";
  for (size_t s = 0; s < family->series_count; s++) {
    const metrics_series_t *series = family->series[s];
    fprintf(out, "%s%s", family->name, suffix);
    if (family->label_count > 0) {
      fputc('{', out);
      for (size_t i = 0; i < family->label_count; i++) {
        fprintf(out, "%s%s=\"", i > 0 ? "," : "", family->labels[i]);
        write_escaped(out, series->values[i], true);
        fputc('"', out);
      }
      fputc('}', out);
    }
    char value[64];
    format_value(series->value, value, sizeof value);
    fprintf(out, " %s\n", value);
  }
}

char *metrics_render(const metrics_t *metrics, size_t *len) {
  char *text = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&text, &size);
  if (out == NULL) return NULL;
  for (size_t i = 0; i < metrics->family_count; i++)
    render_family(metrics, metrics->families[i], out);
  bool failed = ferror(out) != 0;
  if (fclose(out) != 0 || failed) {
    free(text);
    return NULL;
  }
  if (len != NULL) *len = size;
  return text;
}
