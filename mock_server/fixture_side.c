/* The metric and sut-http steps of fixtures (fixture_side.h). */
#include "fixture_side.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_parser.h"

#define METRIC_USAGE                                                                           \
  "expected 'metric NAME{LABELS} OP VALUE' (OP one of == != < <= > >=; VALUE a number, mark, " \
  "mark+N or mark-N)"
#define NOT_METRIC_USAGE "expected '!metric NAME{LABELS}' or '!metric NAME{LABELS} OP VALUE'"
#define SUT_HTTP_USAGE                                                                      \
  "expected 'sut-http METHOD /PATH -> CHECK' with CHECK one of 'status N', 'header NAME', " \
  "'!header NAME', 'header NAME ~ REGEX'"

static const struct {
  const char *text;
  fixture_op_t op;
} OPS[] = {{"==", FIXTURE_OP_EQ}, {"!=", FIXTURE_OP_NE}, {"<", FIXTURE_OP_LT},
           {"<=", FIXTURE_OP_LE}, {">", FIXTURE_OP_GT},  {">=", FIXTURE_OP_GE}};

const char *fixture_op_text(fixture_op_t op) {
  for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
    if (OPS[i].op == op) return OPS[i].text;
  return "";
}

bool fixture_op_holds(fixture_op_t op, double a, double b) {
  switch (op) {
    case FIXTURE_OP_EQ:
      return a == b;
    case FIXTURE_OP_NE:
      return a != b;
    case FIXTURE_OP_LT:
      return a < b;
    case FIXTURE_OP_LE:
      return a <= b;
    case FIXTURE_OP_GT:
      return a > b;
    case FIXTURE_OP_GE:
      return a >= b;
    default:
      return false;
  }
}

fixture_op_t fixture_op_parse(const char *word, size_t len) {
  for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
    if (strlen(OPS[i].text) == len && memcmp(OPS[i].text, word, len) == 0) return OPS[i].op;
  return FIXTURE_OP_NONE;
}

/* ---- selectors ------------------------------------------------------------------------ */

prom_t *fixture_selector_parse(const char *selector, rc_error_t *err) {
  if (*selector == '\0' || *selector == '#') {
    rc_error_set(err, "expected a metric selector NAME or NAME{label=\"value\",...}");
    return NULL;
  }
  /* A selector is a sample line without its value: the exposition parser reads it, so
   * names and label escapes mean what they mean in the scrape. */
  char *line = NULL;
  if (asprintf(&line, "%s 0\n", selector) < 0) {
    rc_error_set(err, "out of memory");
    return NULL;
  }
  rc_error_t why;
  prom_t *prom = prom_parse(line, strlen(line), &why);
  free(line);
  if (prom == NULL) {
    const char *detail = strncmp(why.msg, "line 1, ", 8) == 0 ? why.msg + 8 : why.msg;
    rc_error_set(err, "selector '%.200s': %s", selector, detail);
    return NULL;
  }
  if (prom_sample_count(prom) != 1 || prom_sample_at(prom, 0)->has_timestamp) {
    rc_error_set(err,
                 "selector '%.200s': expected NAME or NAME{label=\"value\",...} (no value, no "
                 "blanks outside quotes)",
                 selector);
    prom_destroy(prom);
    return NULL;
  }
  return prom;
}

double fixture_metric_value(const prom_t *scrape, const prom_t *selector, size_t *found) {
  const prom_sample_t *want = prom_sample_at(selector, 0);
  prom_match_t match[64];
  size_t n = want->label_count < 64 ? want->label_count : 64;
  for (size_t i = 0; i < n; i++)
    match[i] = (prom_match_t){want->labels[i].name, want->labels[i].value};
  return prom_sum(scrape, want->name, match, n, found);
}

/* ---- parsing -------------------------------------------------------------------------- */

/* Splits the last blank-separated word off text[0..*len). */
static const char *pop_word(const char *text, size_t *len, size_t *word_len) {
  size_t end = *len;
  while (end > 0 && text[end - 1] == ' ') end--;
  size_t start = end;
  while (start > 0 && text[start - 1] != ' ') start--;
  *word_len = end - start;
  size_t rest = start;
  while (rest > 0 && text[rest - 1] == ' ') rest--;
  *len = rest;
  return text + start;
}

/* VALUE: a number, or mark / mark+N / mark-N. */
static bool parse_value(const char *word, size_t len, double *value, bool *relative) {
  char buf[64];
  if (len == 0 || len >= sizeof buf) return false;
  memcpy(buf, word, len);
  buf[len] = '\0';
  const char *num = buf;
  *relative = strncmp(buf, "mark", 4) == 0;
  if (*relative) {
    if (buf[4] == '\0') {
      *value = 0;
      return true;
    }
    if (buf[4] != '+' && buf[4] != '-') return false;
    num = buf + 4;
  }
  char *end = NULL;
  *value = strtod(num, &end);
  return end != num && *end == '\0' && isfinite(*value);
}

/* Whether an earlier metric-mark step has this selector. */
static bool marked(const parser_t *p, const char *selector) {
  for (size_t i = 0; i < p->f->step_count; i++)
    if (p->f->steps[i].kind == FIXTURE_STEP_METRIC_MARK &&
        strcmp(p->f->steps[i].text, selector) == 0)
      return true;
  return false;
}

static int metric_parse(parser_t *p, const char *kw, const char *arg, const char *src) {
  fixture_step_kind_t kind = strcmp(kw, "metric") == 0    ? FIXTURE_STEP_METRIC
                             : strcmp(kw, "!metric") == 0 ? FIXTURE_STEP_METRIC_NOT
                                                          : FIXTURE_STEP_METRIC_MARK;
  const char *usage = kind == FIXTURE_STEP_METRIC_NOT ? NOT_METRIC_USAGE
                      : kind == FIXTURE_STEP_METRIC   ? METRIC_USAGE
                                                      : "expected 'metric-mark NAME{LABELS}'";
  size_t len = strlen(arg);
  fixture_op_t op = FIXTURE_OP_NONE;
  double value = 0;
  bool relative = false;
  if (kind != FIXTURE_STEP_METRIC_MARK) {
    size_t rest = len, value_len, op_len;
    const char *value_word = pop_word(arg, &rest, &value_len);
    const char *op_word = pop_word(arg, &rest, &op_len);
    op = rest > 0 ? fixture_op_parse(op_word, op_len) : FIXTURE_OP_NONE;
    /* "!metric x{a=\"b == 1\"}": the words are inside a label value, not an OP VALUE */
    if (op != FIXTURE_OP_NONE && kind == FIXTURE_STEP_METRIC_NOT &&
        !parse_value(value_word, value_len, &value, &relative)) {
      rc_error_t ignored;
      prom_t *whole = fixture_selector_parse(arg, &ignored);
      if (whole != NULL) op = FIXTURE_OP_NONE;
      prom_destroy(whole);
    }
    if (op != FIXTURE_OP_NONE) {
      if (!parse_value(value_word, value_len, &value, &relative)) {
        char why[400];
        snprintf(why, sizeof why, "VALUE '%.*s' is not a number, mark, mark+N or mark-N; %s",
                 (int)(value_len < 40 ? value_len : 40), value_word, usage);
        return fixture_parser_step_error(p, kw, why);
      }
      len = rest;
    } else if (kind == FIXTURE_STEP_METRIC) {
      return fixture_parser_step_error(p, kw, usage);
    }
  }
  char *selector = strndup(arg, len);
  if (selector == NULL) return rc_error_set(p->err, "out of memory");
  rc_error_t why;
  prom_t *parsed = fixture_selector_parse(selector, &why);
  if (parsed == NULL) {
    free(selector);
    char msg[RC_ERROR_MAX + 256];
    snprintf(msg, sizeof msg, "%s; %s", why.msg, usage);
    return fixture_parser_step_error(p, kw, msg);
  }
  prom_destroy(parsed);
  if (relative && !marked(p, selector)) {
    char msg[600];
    snprintf(msg, sizeof msg,
             "VALUE mark needs an earlier 'metric-mark %.200s' (the same selector, written the "
             "same way)",
             selector);
    free(selector);
    return fixture_parser_step_error(p, kw, msg);
  }
  fixture_step_t *s = fixture_parser_new_step(p, kind, src);
  if (s == NULL) {
    free(selector);
    return -1;
  }
  s->text = selector;
  s->op = op;
  s->value = value;
  s->relative = relative;
  p->f->needs |= FIXTURE_NEEDS_METRICS;
  return 0;
}

static bool token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* One word of text at *at (moved past it and the blanks after it), or NULL. */
static char *next_word(const char **at) {
  const char *s = *at;
  while (*s == ' ') s++;
  size_t n = strcspn(s, " ");
  if (n == 0) return NULL;
  char *word = strndup(s, n);
  s += n;
  while (*s == ' ') s++;
  *at = s;
  return word;
}

static bool is_header_name(const char *name) {
  if (name == NULL || *name == '\0' || strlen(name) > 128) return false;
  for (const char *c = name; *c; c++)
    if (!token_char(*c)) return false;
  return true;
}

/* The CHECK after "->" into s. Returns an error text or NULL. */
static const char *check_parse(fixture_step_t *s, const char *check) {
  const char *at = check;
  char *word = next_word(&at);
  const char *why = NULL;
  if (word == NULL) {
    why = SUT_HTTP_USAGE;
  } else if (strcmp(word, "status") == 0) {
    int64_t status = 0;
    if (!fixture_parser_int64(at, 100, 599, &status))
      why = "'status N' needs a status code in 100..599";
    s->check = FIXTURE_CHECK_STATUS;
    s->number = (int)status;
  } else if (strcmp(word, "header") == 0 || strcmp(word, "!header") == 0) {
    s->header = next_word(&at);
    if (!is_header_name(s->header)) {
      why = "expected a header name after 'header' (letters, digits and !#$%&'*+-.^_`|~)";
    } else if (word[0] == '!') {
      s->check = FIXTURE_CHECK_NO_HEADER;
      if (*at != '\0') why = "'!header NAME' takes nothing after the name";
    } else if (*at == '\0') {
      s->check = FIXTURE_CHECK_HEADER;
    } else if (at[0] == '~' && at[1] == ' ' && at[2] != '\0') {
      s->check = FIXTURE_CHECK_HEADER_REGEX;
      s->regex = strdup(at + 2);
      if (s->regex == NULL) why = "out of memory";
    } else {
      why = "expected 'header NAME' or 'header NAME ~ REGEX'";
    }
  } else {
    why = SUT_HTTP_USAGE;
  }
  free(word);
  return why;
}

static bool is_method(const char *m) {
  if (m == NULL || *m == '\0' || strlen(m) > 16) return false;
  for (const char *c = m; *c; c++)
    if (*c < 'A' || *c > 'Z') return false;
  return true;
}

static int sut_http_parse(parser_t *p, const char *kw, const char *arg, const char *src) {
  const char *at = arg;
  char *method = next_word(&at);
  char *path = next_word(&at);
  char *arrow = next_word(&at);
  const char *why = NULL;
  if (!is_method(method))
    why = "METHOD must be an upper-case HTTP method (GET, HEAD, OPTIONS, ...); " SUT_HTTP_USAGE;
  else if (path == NULL || path[0] != '/')
    why = "PATH must start with '/'; " SUT_HTTP_USAGE;
  else if (arrow == NULL || strcmp(arrow, "->") != 0)
    why = SUT_HTTP_USAGE;
  rc_error_t text_err;
  if (why == NULL && fixture_text_check(path, FIXTURE_TEXT_SEND, &text_err) != 0)
    why = text_err.msg;
  fixture_step_t *s = NULL;
  if (why == NULL && (s = fixture_parser_new_step(p, FIXTURE_STEP_SUT_HTTP, src)) == NULL) {
    free(method);
    free(path);
    free(arrow);
    return -1;
  }
  if (s != NULL) {
    s->method = method;
    s->text = path;
    method = path = NULL;
    why = check_parse(s, at);
    if (why == NULL && s->regex != NULL &&
        fixture_text_check(s->regex, FIXTURE_TEXT_REGEX, &text_err) != 0)
      why = text_err.msg;
  }
  int rc = 0;
  if (why != NULL) {
    char msg[RC_ERROR_MAX];
    snprintf(msg, sizeof msg, "%s", why);
    rc = fixture_parser_step_error(p, kw, msg);
  }
  free(method);
  free(path);
  free(arrow);
  p->f->needs |= FIXTURE_NEEDS_SUT_HTTP;
  return rc;
}

/* The quantities a db step may observe (docs/FIXTURES.md "The SUT's database"). */
static const char *const DB_QUANTITIES[] = {"sessions", "idle-in-transaction"};

static int db_parse(parser_t *p, const char *kw, const char *arg, const char *src) {
  char quantity[32], op[8], number[32], extra;
  int64_t n = 0;
  bool known = false;
  if (sscanf(arg, "%31s %7s %31s %c", quantity, op, number, &extra) == 3)
    for (size_t i = 0; i < sizeof DB_QUANTITIES / sizeof DB_QUANTITIES[0]; i++)
      known = known || strcmp(quantity, DB_QUANTITIES[i]) == 0;
  fixture_op_t parsed = known ? fixture_op_parse(op, strlen(op)) : FIXTURE_OP_NONE;
  if (parsed == FIXTURE_OP_NONE || !fixture_parser_int64(number, 0, 100000, &n)) {
    char why[200];
    snprintf(why, sizeof why,
             "expected '%s QUANTITY OP N' (QUANTITY sessions or idle-in-transaction; OP one of "
             "== != < <= > >=; N >= 0)",
             kw);
    return fixture_parser_step_error(p, kw, why);
  }
  fixture_step_t *s =
      fixture_parser_new_step(p, kw[0] == '!' ? FIXTURE_STEP_DB_NOT : FIXTURE_STEP_DB, src);
  if (s == NULL) return -1;
  s->op = parsed;
  s->value = (double)n;
  p->f->needs |= FIXTURE_NEEDS_DB;
  return (s->text = strdup(quantity)) == NULL ? rc_error_set(p->err, "out of memory") : 0;
}

int fixture_side_parse(parser_t *p, const char *kw, const char *arg, const char *src) {
  if (strcmp(kw, "sut-http") == 0) return sut_http_parse(p, kw, arg, src);
  if (strcmp(kw, "db") == 0 || strcmp(kw, "!db") == 0) return db_parse(p, kw, arg, src);
  return metric_parse(p, kw, arg, src);
}

/* ---- judging answers ------------------------------------------------------------------ */

static void values_of(const http_response_t *r, const char *name, char *seen, size_t cap) {
  size_t n = http_response_header_count(r, name);
  if (n == 0) {
    snprintf(seen, cap, "no %s header (status %ld)", name, r->status);
    return;
  }
  size_t at = 0;
  for (size_t i = 0; i < n && at < cap; i++) {
    int w = snprintf(seen + at, cap - at, "%s%s: %.200s", i ? ", " : "", name,
                     http_response_header(r, name, i));
    if (w < 0) break;
    at += (size_t)w;
  }
}

bool fixture_sut_http_holds(const fixture_step_t *s, const http_response_t *r,
                            const fixture_vars_t *vars, char *seen, size_t cap) {
  switch (s->check) {
    case FIXTURE_CHECK_STATUS:
      snprintf(seen, cap, "status %ld", r->status);
      return r->status == s->number;
    case FIXTURE_CHECK_HEADER:
      values_of(r, s->header, seen, cap);
      return http_response_header_count(r, s->header) > 0;
    case FIXTURE_CHECK_NO_HEADER:
      values_of(r, s->header, seen, cap);
      return http_response_header_count(r, s->header) == 0;
    case FIXTURE_CHECK_HEADER_REGEX: {
      values_of(r, s->header, seen, cap);
      rc_error_t err;
      fixture_matcher_t *m = fixture_matcher_create(s->regex, FIXTURE_TEXT_REGEX, vars, &err);
      if (m == NULL) {
        snprintf(seen, cap, "%s", err.msg);
        return false;
      }
      bool hit = false;
      for (size_t i = 0; i < http_response_header_count(r, s->header) && !hit; i++) {
        const char *v = http_response_header(r, s->header, i);
        hit = fixture_matcher_test(m, v, strlen(v));
      }
      fixture_matcher_destroy(m);
      return hit;
    }
  }
  return false;
}
