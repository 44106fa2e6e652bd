/* prom: Prometheus text format parser (see prom.h).
 *
 * One pass over the text, line by line, with an explicit end pointer so that the input
 * need not be NUL-terminated and may contain any bytes. The grammar follows the text
 * format 0.0.4 as Prometheus's own parser reads it (leading blanks skipped, blanks
 * between tokens, an optional trailing comma in label sets); numbers are parsed in the
 * C locale whatever the process's locale is. */
#include "prom.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A float token longer than this is not a number anyone writes. */
#define PROM_MAX_NUMBER 128

typedef struct prom_family {
  char *name;
  char *type; /* NULL until its # TYPE line */
  char *help; /* NULL until its # HELP line */
  size_t type_line;
  size_t help_line;
} prom_family_t;

struct prom {
  prom_sample_t *samples;
  size_t sample_count;
  size_t sample_cap;
  prom_family_t *families;
  size_t family_count;
  size_t family_cap;
};

typedef struct parser {
  const char *line; /* start of the current line */
  const char *end;  /* end of the current line (LF or CR excluded) */
  const char *at;   /* cursor */
  size_t line_no;
  locale_t c_locale;
  rc_error_t *err;
  prom_t *prom;
} parser_t;

/* ---------------------------------------------------------------------------------
 * Errors */

/* Describes the byte at the cursor for "got ..." texts. */
static void describe_here(const parser_t *p, char *buf, size_t cap) {
  if (p->at >= p->end) {
    snprintf(buf, cap, "end of line");
    return;
  }
  unsigned char c = (unsigned char)*p->at;
  if (c >= 0x21 && c < 0x7f)
    snprintf(buf, cap, "'%c'", c);
  else if (c == ' ' || c == '\t')
    snprintf(buf, cap, "%s", c == ' ' ? "a space" : "a tab");
  else
    snprintf(buf, cap, "byte 0x%02x", c);
}

static int fail(const parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const parser_t *p, const char *fmt, ...) {
  char msg[RC_ERROR_MAX / 2];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rc_error_set(p->err, "line %zu, column %zu: %s", p->line_no, (size_t)(p->at - p->line) + 1, msg);
  return -1;
}

/* "expected X, got Y" at the cursor. */
static int fail_expected(const parser_t *p, const char *expected) {
  char got[32];
  describe_here(p, got, sizeof got);
  return fail(p, "expected %s, got %s", expected, got);
}

static int fail_oom(const parser_t *p) {
  return fail(p, "out of memory");
}

/* ---------------------------------------------------------------------------------
 * Lexing helpers */

static bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

static void skip_blanks(parser_t *p) {
  while (p->at < p->end && is_blank(*p->at)) p->at++;
}

static bool is_name_start(char c, bool metric) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
}

static bool is_name_char(char c, bool metric) {
  return is_name_start(c, metric) || (c >= '0' && c <= '9');
}

/* Reads a metric name (metric=true, colons allowed) or a label name at the cursor into
 * a malloc'd string. */
static int read_name(parser_t *p, bool metric, const char *what, char **out) {
  if (p->at >= p->end || !is_name_start(*p->at, metric)) return fail_expected(p, what);
  const char *start = p->at;
  while (p->at < p->end && is_name_char(*p->at, metric)) p->at++;
  *out = strndup(start, (size_t)(p->at - start));
  return *out == NULL ? fail_oom(p) : 0;
}

/* Reads a blank-delimited token; empty when the cursor is at a blank or the end. */
static void read_token(parser_t *p, const char **start, size_t *len) {
  *start = p->at;
  while (p->at < p->end && !is_blank(*p->at)) p->at++;
  *len = (size_t)(p->at - *start);
}

/* Unescapes [start, stop) into a malloc'd string. Label values know \\, \" and \n;
 * HELP texts know \\ and \n. `quote_escape` selects the label rules. */
static int unescape(parser_t *p, const char *start, const char *stop, bool quote_escape,
                    char **out) {
  char *buf = malloc((size_t)(stop - start) + 1);
  if (buf == NULL) return fail_oom(p);
  size_t n = 0;
  for (const char *c = start; c < stop; c++) {
    if (*c != '\\') {
      if (*c == '\0') {
        free(buf);
        p->at = c;
        return fail(p, "NUL byte inside %s", quote_escape ? "a label value" : "a HELP text");
      }
      buf[n++] = *c;
      continue;
    }
    p->at = c;
    if (c + 1 >= stop) {
      free(buf);
      return fail(p, "'\\' at the end of %s", quote_escape ? "a label value" : "a HELP text");
    }
    char e = c[1];
    if (e == '\\')
      buf[n++] = '\\';
    else if (e == 'n')
      buf[n++] = '\n';
    else if (e == '"' && quote_escape)
      buf[n++] = '"';
    else {
      free(buf);
      p->at = c + 1;
      return fail_expected(p,
                           quote_escape ? "an escape \\\\, \\\" or \\n" : "an escape \\\\ or \\n");
    }
    c++;
  }
  buf[n] = '\0';
  *out = buf;
  return 0;
}

/* ---------------------------------------------------------------------------------
 * Families (# TYPE, # HELP) */

static prom_family_t *family_get(prom_t *prom, const char *name) {
  for (size_t i = 0; i < prom->family_count; i++)
    if (strcmp(prom->families[i].name, name) == 0) return &prom->families[i];
  return NULL;
}

static const prom_family_t *family_find(const prom_t *prom, const char *name, size_t len) {
  for (size_t i = 0; i < prom->family_count; i++) {
    const char *n = prom->families[i].name;
    if (strlen(n) == len && strncmp(n, name, len) == 0) return &prom->families[i];
  }
  return NULL;
}

/* Takes ownership of name. */
static prom_family_t *family_add(parser_t *p, char *name) {
  prom_t *prom = p->prom;
  prom_family_t *f = family_get(prom, name);
  if (f != NULL) {
    free(name);
    return f;
  }
  if (prom->family_count == prom->family_cap) {
    size_t cap = prom->family_cap ? prom->family_cap * 2 : 32;
    prom_family_t *grown = realloc(prom->families, cap * sizeof *grown);
    if (grown == NULL) {
      free(name);
      return NULL;
    }
    prom->families = grown;
    prom->family_cap = cap;
  }
  f = &prom->families[prom->family_count++];
  *f = (prom_family_t){.name = name};
  return f;
}

static const char *const TYPES[] = {"counter", "gauge", "histogram", "summary", "untyped", NULL};

/* "# HELP name text" / "# TYPE name type"; the cursor is after the keyword. */
static int parse_descriptor(parser_t *p, bool is_type) {
  const char *keyword = is_type ? "TYPE" : "HELP";
  skip_blanks(p);
  char *name = NULL;
  const char *name_at = p->at;
  if (read_name(p, true, "a metric name", &name) != 0) return -1;
  prom_family_t *f = family_add(p, name);
  if (f == NULL) return fail_oom(p);
  size_t previous = is_type ? f->type_line : f->help_line;
  if (previous != 0) {
    p->at = name_at;
    return fail(p, "second # %s line for '%s' (the first is on line %zu)", keyword, f->name,
                previous);
  }
  if (p->at < p->end && !is_blank(*p->at)) return fail_expected(p, "a blank after the metric name");
  skip_blanks(p);
  if (!is_type) {
    if (unescape(p, p->at, p->end, false, &f->help) != 0) return -1;
    f->help_line = p->line_no;
    return 0;
  }
  const char *word;
  size_t len;
  read_token(p, &word, &len);
  for (size_t i = 0; TYPES[i] != NULL; i++) {
    if (strlen(TYPES[i]) != len || strncmp(TYPES[i], word, len) != 0) continue;
    skip_blanks(p);
    if (p->at < p->end) return fail_expected(p, "the end of the # TYPE line");
    f->type = strdup(TYPES[i]);
    if (f->type == NULL) return fail_oom(p);
    f->type_line = p->line_no;
    return 0;
  }
  p->at = word;
  return fail_expected(p, "counter, gauge, histogram, summary or untyped");
}

static int parse_comment(parser_t *p) {
  p->at++; /* '#' */
  skip_blanks(p);
  const char *word;
  size_t len;
  read_token(p, &word, &len);
  if (len == 4 && (strncmp(word, "HELP", 4) == 0 || strncmp(word, "TYPE", 4) == 0) &&
      p->at < p->end)
    return parse_descriptor(p, word[0] == 'T');
  return 0; /* any other comment */
}

/* ---------------------------------------------------------------------------------
 * Samples */

static void sample_free(prom_sample_t *s) {
  free(s->name);
  for (size_t i = 0; i < s->label_count; i++) {
    free(s->labels[i].name);
    free(s->labels[i].value);
  }
  free(s->labels);
}

static int parse_label_value(parser_t *p, char **out) {
  if (p->at >= p->end || *p->at != '"') return fail_expected(p, "'\"' starting the label value");
  const char *start = ++p->at;
  const char *c = start;
  while (c < p->end && *c != '"') c += (*c == '\\' && c + 1 < p->end) ? 2 : 1;
  if (c >= p->end) {
    p->at = p->end;
    return fail_expected(p, "'\"' closing the label value");
  }
  if (unescape(p, start, c, true, out) != 0) return -1;
  p->at = c + 1;
  return 0;
}

static int parse_labels(parser_t *p, prom_sample_t *s) {
  p->at++; /* '{' */
  size_t cap = 0;
  for (;;) {
    skip_blanks(p);
    if (p->at < p->end && *p->at == '}') break;
    char *name = NULL;
    const char *name_at = p->at;
    if (read_name(p, false, "a label name or '}'", &name) != 0) return -1;
    for (size_t i = 0; i < s->label_count; i++) {
      if (strcmp(s->labels[i].name, name) == 0) {
        p->at = name_at;
        int rc = fail(p, "label '%s' given twice", name);
        free(name);
        return rc;
      }
    }
    if (s->label_count == cap) {
      cap = cap ? cap * 2 : 4;
      prom_label_t *grown = realloc(s->labels, cap * sizeof *grown);
      if (grown == NULL) {
        free(name);
        return fail_oom(p);
      }
      s->labels = grown;
    }
    prom_label_t *label = &s->labels[s->label_count++];
    *label = (prom_label_t){.name = name};
    skip_blanks(p);
    if (p->at >= p->end || *p->at != '=') {
      char expected[128];
      snprintf(expected, sizeof expected, "'=' after label name '%.60s'", name);
      return fail_expected(p, expected);
    }
    p->at++;
    skip_blanks(p);
    if (parse_label_value(p, &label->value) != 0) return -1;
    skip_blanks(p);
    if (p->at < p->end && *p->at == ',') {
      p->at++;
      continue;
    }
    if (p->at < p->end && *p->at == '}') break;
    return fail_expected(p, "',' or '}' after a label value");
  }
  p->at++; /* '}' */
  return 0;
}

static int parse_value(parser_t *p, double *value) {
  const char *start;
  size_t len;
  read_token(p, &start, &len);
  if (len == 0) {
    p->at = start;
    return fail_expected(p, "a sample value");
  }
  char buf[PROM_MAX_NUMBER + 1];
  if (len > PROM_MAX_NUMBER) {
    p->at = start;
    return fail(p, "sample value longer than %d characters", PROM_MAX_NUMBER);
  }
  memcpy(buf, start, len);
  buf[len] = '\0';
  char *stop = NULL;
  errno = 0;
  double v = strtod_l(buf, &stop, p->c_locale);
  /* ERANGE on underflow still gives a usable (tiny) value; on overflow an infinity,
   * which is what the text meant. Only a partial parse is an error. */
  if (stop == buf || *stop != '\0' || memchr(buf, '\0', len) != NULL) {
    p->at = start;
    char shown[4 * 40 + 1];
    size_t n = 0;
    for (size_t i = 0; i < len && i < 40; i++) {
      unsigned char c = (unsigned char)start[i];
      n += (size_t)snprintf(shown + n, sizeof shown - n, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x",
                            c);
    }
    return fail(p, "expected a number (such as 1, -2.5e3, NaN, +Inf), got '%s%s'", shown,
                len > 40 ? "..." : "");
  }
  *value = v;
  return 0;
}

static int parse_timestamp(parser_t *p, prom_sample_t *s) {
  const char *start;
  size_t len;
  read_token(p, &start, &len);
  size_t i = 0;
  bool negative = len > 0 && (start[0] == '-' || start[0] == '+');
  if (negative) negative = start[i++] == '-';
  if (i == len) {
    p->at = start;
    return fail_expected(p, "a timestamp (integer milliseconds)");
  }
  int64_t ms = 0;
  for (; i < len; i++) {
    if (start[i] < '0' || start[i] > '9') {
      p->at = start + i;
      return fail_expected(p, "a digit in the timestamp");
    }
    int digit = start[i] - '0';
    if (ms > (INT64_MAX - digit) / 10) {
      p->at = start;
      return fail(p, "timestamp out of range");
    }
    ms = ms * 10 + digit;
  }
  s->has_timestamp = true;
  s->timestamp_ms = negative ? -ms : ms;
  return 0;
}

static int parse_sample(parser_t *p) {
  prom_t *prom = p->prom;
  if (prom->sample_count == prom->sample_cap) {
    size_t cap = prom->sample_cap ? prom->sample_cap * 2 : 64;
    prom_sample_t *grown = realloc(prom->samples, cap * sizeof *grown);
    if (grown == NULL) return fail_oom(p);
    prom->samples = grown;
    prom->sample_cap = cap;
  }
  prom_sample_t *s = &prom->samples[prom->sample_count];
  *s = (prom_sample_t){.line = p->line_no};
  int rc = read_name(p, true, "a metric name, '#' or a blank line", &s->name);
  if (rc == 0) {
    skip_blanks(p);
    if (p->at < p->end && *p->at == '{') rc = parse_labels(p, s);
  }
  if (rc == 0) {
    skip_blanks(p);
    rc = parse_value(p, &s->value);
  }
  if (rc == 0) {
    skip_blanks(p);
    if (p->at < p->end) rc = parse_timestamp(p, s);
  }
  if (rc == 0) {
    skip_blanks(p);
    if (p->at < p->end) rc = fail_expected(p, "the end of the sample line");
  }
  if (rc != 0) {
    sample_free(s);
    return -1;
  }
  prom->sample_count++;
  return 0;
}

/* ---------------------------------------------------------------------------------
 * Public API */

prom_t *prom_parse(const char *text, size_t len, rc_error_t *err) {
  if (text == NULL && len > 0) {
    rc_error_set(err, "no text to parse (NULL)");
    return NULL;
  }
  prom_t *prom = calloc(1, sizeof *prom);
  locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (prom == NULL || c_locale == (locale_t)0) {
    rc_error_set(err, "out of memory");
    free(prom);
    if (c_locale != (locale_t)0) freelocale(c_locale);
    return NULL;
  }
  parser_t p = {.c_locale = c_locale, .err = err, .prom = prom};
  const char *stop = text + len;
  int rc = 0;
  for (const char *at = text; rc == 0 && at < stop;) {
    const char *lf = memchr(at, '\n', (size_t)(stop - at));
    const char *eol = lf != NULL ? lf : stop;
    p.line = at;
    p.end = eol;
    p.at = at;
    p.line_no++;
    if (p.end > p.line && p.end[-1] == '\r') p.end--;
    skip_blanks(&p);
    if (p.at < p.end) rc = *p.at == '#' ? parse_comment(&p) : parse_sample(&p);
    at = lf != NULL ? lf + 1 : stop;
  }
  freelocale(c_locale);
  if (rc != 0) {
    prom_destroy(prom);
    return NULL;
  }
  return prom;
}

void prom_destroy(prom_t *prom) {
  if (prom == NULL) return;
  for (size_t i = 0; i < prom->sample_count; i++) sample_free(&prom->samples[i]);
  free(prom->samples);
  for (size_t i = 0; i < prom->family_count; i++) {
    free(prom->families[i].name);
    free(prom->families[i].type);
    free(prom->families[i].help);
  }
  free(prom->families);
  free(prom);
}

size_t prom_sample_count(const prom_t *prom) {
  return prom != NULL ? prom->sample_count : 0;
}

const prom_sample_t *prom_sample_at(const prom_t *prom, size_t i) {
  return prom != NULL && i < prom->sample_count ? &prom->samples[i] : NULL;
}

const char *prom_sample_label(const prom_sample_t *sample, const char *name) {
  for (size_t i = 0; sample != NULL && i < sample->label_count; i++)
    if (strcmp(sample->labels[i].name, name) == 0) return sample->labels[i].value;
  return NULL;
}

static bool has_suffix(const char *name, size_t len, const char *suffix) {
  size_t n = strlen(suffix);
  return len > n && strncmp(name + len - n, suffix, n) == 0;
}

const char *prom_type_of(const prom_t *prom, const char *sample_name) {
  if (prom == NULL || sample_name == NULL) return NULL;
  size_t len = strlen(sample_name);
  const prom_family_t *f = family_find(prom, sample_name, len);
  if (f != NULL && f->type != NULL) return f->type;
  static const char *const SUFFIXES[] = {"_total", "_count", "_sum", "_bucket", "_created", NULL};
  for (size_t i = 0; SUFFIXES[i] != NULL; i++) {
    if (!has_suffix(sample_name, len, SUFFIXES[i])) continue;
    f = family_find(prom, sample_name, len - strlen(SUFFIXES[i]));
    if (f != NULL && f->type != NULL) return f->type;
  }
  return NULL;
}

const char *prom_help_of(const prom_t *prom, const char *family) {
  if (prom == NULL || family == NULL) return NULL;
  const prom_family_t *f = family_find(prom, family, strlen(family));
  return f != NULL ? f->help : NULL;
}

bool prom_name_matches(const char *sample_name, const char *metric) {
  if (sample_name == NULL || metric == NULL) return false;
  if (strcmp(sample_name, metric) == 0) return true;
  size_t s = strlen(sample_name), m = strlen(metric);
  /* sample = metric + "_total", or metric = sample + "_total" */
  if (s == m + 6 && strncmp(sample_name, metric, m) == 0 && strcmp(sample_name + m, "_total") == 0)
    return true;
  return m == s + 6 && strncmp(metric, sample_name, s) == 0 && strcmp(metric + s, "_total") == 0;
}

static bool labels_match(const prom_sample_t *s, const prom_match_t *match, size_t count) {
  for (size_t i = 0; i < count; i++) {
    const char *v = prom_sample_label(s, match[i].name);
    if (v == NULL || match[i].value == NULL || strcmp(v, match[i].value) != 0) return false;
  }
  return true;
}

const prom_sample_t *prom_find(const prom_t *prom, const char *metric, const prom_match_t *match,
                               size_t match_count) {
  for (size_t i = 0; prom != NULL && i < prom->sample_count; i++) {
    const prom_sample_t *s = &prom->samples[i];
    if (prom_name_matches(s->name, metric) && labels_match(s, match, match_count)) return s;
  }
  return NULL;
}

double prom_sum(const prom_t *prom, const char *metric, const prom_match_t *match,
                size_t match_count, size_t *found) {
  double sum = 0;
  size_t n = 0;
  for (size_t i = 0; prom != NULL && i < prom->sample_count; i++) {
    const prom_sample_t *s = &prom->samples[i];
    if (!prom_name_matches(s->name, metric) || !labels_match(s, match, match_count)) continue;
    sum += s->value;
    n++;
  }
  if (found != NULL) *found = n;
  return sum;
}
