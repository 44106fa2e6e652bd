/* The steps of a fixture's script (docs/FIXTURES.md "Steps"): one line, one step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_parser.h"
#include "fixture_remote.h"
#include "fixture_side.h"

/* ---- script --------------------------------------------------------------------------- */

fixture_step_t *fixture_parser_new_step(parser_t *p, fixture_step_kind_t kind, const char *source) {
  fixture_step_t **list = &p->f->steps;
  size_t *count = &p->f->step_count;
  size_t cap = p->step_cap;
  if (p->group >= 0) {
    fixture_step_t *g = &p->f->steps[p->group];
    list = &g->children;
    count = &g->child_count;
    cap = g->child_count; /* children grow one by one */
  }
  if (*count == cap) {
    size_t want = p->group >= 0 ? cap + 1 : (cap ? cap * 2 : 16);
    fixture_step_t *grown = realloc(*list, want * sizeof *grown);
    if (grown == NULL) {
      rc_error_set(p->err, "out of memory");
      return NULL;
    }
    *list = grown;
    if (p->group < 0) p->step_cap = want;
  }
  fixture_step_t *s = &(*list)[(*count)++];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->line = p->line;
  s->deadline_ms = p->deadline_ms;
  s->source = strdup(source);
  if (s->source == NULL) {
    rc_error_set(p->err, "out of memory");
    return NULL;
  }
  return s;
}

/* The connection a step uses: its cN prefix or the current one. */
static int step_conn(parser_t *p, const char *keyword, int prefix, int *conn) {
  int n = prefix > 0 ? prefix : p->current_conn;
  if (n > p->known_conns + 1) {
    char why[128];
    snprintf(why, sizeof why,
             "connection c%d is used before c%d (connections come in the order "
             "the worker opens them)",
             n, p->known_conns + 1);
    return fixture_parser_step_error(p, keyword, why);
  }
  if (n > p->known_conns) p->known_conns = n;
  *conn = n;
  return 0;
}

static int line_step(parser_t *p, const char *kw, const char *text, int prefix, const char *src) {
  fixture_step_kind_t kind = kw[0] == '>'                ? FIXTURE_STEP_SEND
                             : strncmp(kw, "!<", 2) == 0 ? FIXTURE_STEP_EXPECT_NOT
                                                         : FIXTURE_STEP_EXPECT;
  fixture_text_use_t use = strcmp(kw, ">") == 0                                 ? FIXTURE_TEXT_SEND
                           : strcmp(kw, ">raw") == 0 || strcmp(kw, "<raw") == 0 ? FIXTURE_TEXT_RAW
                           : strchr(kw, '~') != NULL                            ? FIXTURE_TEXT_REGEX
                                                     : FIXTURE_TEXT_PATTERN;
  int split = 0;
  if (strcmp(kw, ">split") == 0) {
    char k[32];
    int used = 0;
    if (sscanf(text, "%31s%n", k, &used) != 1)
      return fixture_parser_step_error(p, kw, "expected '>split K TEXT'");
    int64_t v;
    if (!fixture_parser_int64(k, 1, 65536, &v))
      return fixture_parser_step_error(p, kw, "K must be a number of bytes in 1..65536");
    split = (int)v;
    text += used;
    if (*text == ' ') text++;
    use = FIXTURE_TEXT_SEND;
  }
  rc_error_t why;
  if (fixture_text_check(text, use, &why) != 0) return fixture_parser_step_error(p, kw, why.msg);
  if (p->group >= 0) {
    fixture_step_t *g = &p->f->steps[p->group];
    if (kind != FIXTURE_STEP_EXPECT)
      return fixture_parser_step_error(p, kw,
                                       "only '<', '<~' and '<raw' steps may be inside 'unordered'");
    if (prefix > 0 && prefix != g->conn)
      return fixture_parser_step_error(p, kw,
                                       "every line of an 'unordered' window is on its connection");
  }
  int conn = 0;
  if (p->group >= 0)
    conn = p->f->steps[p->group].conn;
  else if (step_conn(p, kw, prefix, &conn) != 0)
    return -1;
  fixture_step_t *s = fixture_parser_new_step(p, kind, src);
  if (s == NULL) return -1;
  s->conn = conn;
  s->use = use;
  s->number = split;
  s->text = strdup(text);
  return s->text == NULL ? rc_error_set(p->err, "out of memory") : 0;
}

static int on_off(parser_t *p, const char *kw, const char *arg, bool *out) {
  if (strcmp(arg, "on") == 0)
    *out = true;
  else if (strcmp(arg, "off") == 0)
    *out = false;
  else
    return fixture_parser_step_error(p, kw, "expected on or off");
  return 0;
}

static int closed_step(parser_t *p, fixture_step_t *s, const char *arg) {
  char words[3][16];
  int n = sscanf(arg, "%15s %15s %15s", words[0], words[1], words[2]);
  int i = 0;
  if (n >= 2 && strcmp(words[0], "by") == 0) {
    if (strcmp(words[1], "sut") == 0)
      s->by = FIXTURE_BY_SUT;
    else if (strcmp(words[1], "mock") == 0)
      s->by = FIXTURE_BY_MOCK;
    else
      return fixture_parser_step_error(p, "closed", "expected 'by sut' or 'by mock'");
    i = 2;
  }
  if (i < n && i < 3) {
    if (strcmp(words[i], "fin") == 0)
      s->how = FIXTURE_HOW_FIN;
    else if (strcmp(words[i], "rst") == 0)
      s->how = FIXTURE_HOW_RST;
    else
      return fixture_parser_step_error(p, "closed", "expected 'closed [by sut|by mock] [fin|rst]'");
    i++;
  }
  if (i != (n < 0 ? 0 : n))
    return fixture_parser_step_error(p, "closed", "expected 'closed [by sut|by mock] [fin|rst]'");
  return 0;
}

static int row_step(parser_t *p, const char *arg, const char *src) {
  char stream[256], token[64];
  int used = 0;
  if (sscanf(arg, "%255s %63s %n", stream, token, &used) != 2 || used == 0)
    return fixture_parser_step_error(p, "row", "expected 'row STREAM TOKEN JSON'");
  int64_t t;
  if (!fixture_parser_int64(token, INT64_MIN, INT64_MAX, &t))
    return fixture_parser_step_error(p, "row", "TOKEN must be a decimal integer");
  const char *json = arg + used;
  if (*json == '\0' || !proto_json_valid(json, strlen(json), NULL))
    return fixture_parser_step_error(p, "row", "JSON must be one valid JSON value");
  fixture_step_t *s = fixture_parser_new_step(p, FIXTURE_STEP_ROW, src);
  if (s == NULL) return -1;
  s->token = t;
  s->stream = strdup(stream);
  s->text = strdup(json);
  return s->stream == NULL || s->text == NULL ? rc_error_set(p->err, "out of memory") : 0;
}

/* Steps that are one keyword and a number (milliseconds or a count). */
static int number_step(parser_t *p, fixture_step_kind_t kind, const char *kw, const char *arg,
                       int prefix, const char *src) {
  int v = 0;
  if (kind == FIXTURE_STEP_HTTP_PAGE) {
    int64_t n;
    if (!fixture_parser_int64(arg, 1, 100000, &n))
      return fixture_parser_step_error(p, kw, "expected rows in 1..100000");
    v = (int)n;
  } else if (!fixture_parser_ms(arg, 0, &v)) {
    return fixture_parser_step_error(p, kw, "expected milliseconds in 0..600000");
  }
  int conn = 0;
  if (kind == FIXTURE_STEP_STALL && step_conn(p, kw, prefix, &conn) != 0) return -1;
  fixture_step_t *s = fixture_parser_new_step(p, kind, src);
  if (s == NULL) return -1;
  s->conn = conn;
  s->ms = v;
  s->number = v;
  return 0;
}

static int side_step(parser_t *p, const char *kw, const char *arg, const char *src) {
  bool negated = kw[0] == '!';
  const char *bare = negated ? kw + 1 : kw;
  fixture_step_kind_t kind;
  fixture_text_use_t use;
  if (strcmp(bare, "http") == 0) {
    kind = negated ? FIXTURE_STEP_HTTP_NOT : FIXTURE_STEP_HTTP;
    use = FIXTURE_TEXT_PATTERN;
  } else if (strcmp(bare, "http~") == 0) {
    kind = negated ? FIXTURE_STEP_HTTP_NOT : FIXTURE_STEP_HTTP;
    use = FIXTURE_TEXT_REGEX;
  } else {
    kind = negated ? FIXTURE_STEP_LOG_NOT : FIXTURE_STEP_LOG;
    use = FIXTURE_TEXT_REGEX;
  }
  if (*arg == '\0') return fixture_parser_step_error(p, kw, "expected a pattern");
  rc_error_t why;
  if (fixture_text_check(arg, use, &why) != 0) return fixture_parser_step_error(p, kw, why.msg);
  fixture_step_t *s = fixture_parser_new_step(p, kind, src);
  if (s == NULL) return -1;
  s->use = use;
  s->text = strdup(arg);
  if (kind == FIXTURE_STEP_LOG || kind == FIXTURE_STEP_LOG_NOT) p->f->needs |= FIXTURE_NEEDS_LOG;
  return s->text == NULL ? rc_error_set(p->err, "out of memory") : 0;
}

static const char *const STEP_NAMES =
    "connect, >, >raw, >split, <, <~, <raw, !<, !<~, unordered, end, close, reset, stall, "
    "closed, open, wait, deadline, http, http~, !http, !http~, log~, !log~, ping, listen, "
    "http-fail, http-delay, http-page-size, row, terminate, metric, !metric, metric-mark, "
    "sut-http, "
    "remote, !remote, db, !db";

int fixture_parser_script_line(parser_t *p, const char *line) {
  const char *s = line;
  int prefix = 0;
  if (s[0] == 'c' && s[1] >= '1' && s[1] <= '9') {
    const char *d = s + 1;
    long n = 0;
    while (*d >= '0' && *d <= '9' && n <= FIXTURE_MAX_CONNS) n = n * 10 + (*d++ - '0');
    if (*d == ' ' || *d == '\0') {
      if (n > FIXTURE_MAX_CONNS)
        return fixture_parser_step_error(p, line, "at most 1000 connections");
      prefix = (int)n;
      s = *d == ' ' ? d + 1 : d;
    }
  }
  char kw[32];
  size_t kl = strcspn(s, " ");
  if (kl == 0 || kl >= sizeof kw) {
    char why[600];
    snprintf(why, sizeof why, "%s:%d: unknown step '%.40s' (known: %s)", p->path, p->line, s,
             STEP_NAMES);
    return rc_error_set(p->err, "%s", why);
  }
  memcpy(kw, s, kl);
  kw[kl] = '\0';
  const char *arg = s[kl] == ' ' ? s + kl + 1 : s + kl;
  if (p->group >= 0 && strcmp(kw, "end") != 0 && kw[0] != '<' && strncmp(kw, "!<", 2) != 0)
    return fixture_parser_step_error(
        p, kw,
        "only '<', '<~' and '<raw' steps may be inside 'unordered'; close "
        "it with 'end'");
  if (strcmp(kw, ">") == 0 || strcmp(kw, ">raw") == 0 || strcmp(kw, ">split") == 0 ||
      strcmp(kw, "<") == 0 || strcmp(kw, "<~") == 0 || strcmp(kw, "<raw") == 0 ||
      strcmp(kw, "!<") == 0 || strcmp(kw, "!<~") == 0) {
    return line_step(p, kw, arg, prefix, line);
  }
  if (strcmp(kw, "connect") == 0) {
    int64_t n = 0;
    if (prefix > 0 || arg[0] != 'c' || !fixture_parser_int64(arg + 1, 1, FIXTURE_MAX_CONNS, &n))
      return fixture_parser_step_error(p, kw, "expected 'connect cN'");
    if (n != p->known_conns + 1) {
      char why[160];
      snprintf(why, sizeof why,
               "expected 'connect c%d': connections come in the order the worker "
               "opens them, each introduced once",
               p->known_conns + 1);
      return fixture_parser_step_error(p, kw, why);
    }
    fixture_step_t *st = fixture_parser_new_step(p, FIXTURE_STEP_CONNECT, line);
    if (st == NULL) return -1;
    st->conn = p->known_conns = p->current_conn = (int)n;
    return 0;
  }
  if (strcmp(kw, "unordered") == 0) {
    if (*arg != '\0')
      return fixture_parser_step_error(p, kw, "takes no argument (its lines follow, then 'end')");
    int conn = 0;
    if (step_conn(p, kw, prefix, &conn) != 0) return -1;
    fixture_step_t *st = fixture_parser_new_step(p, FIXTURE_STEP_UNORDERED, line);
    if (st == NULL) return -1;
    st->conn = conn;
    p->group = (long)p->f->step_count - 1;
    return 0;
  }
  if (strcmp(kw, "end") == 0) {
    if (p->group < 0)
      return fixture_parser_step_error(p, kw, "there is no 'unordered' window to end");
    if (p->f->steps[p->group].child_count == 0)
      return fixture_parser_step_error(p, kw, "an 'unordered' window needs at least one line");
    p->group = -1;
    return 0;
  }
  if (strcmp(kw, "close") == 0 || strcmp(kw, "reset") == 0 || strcmp(kw, "closed") == 0 ||
      strcmp(kw, "open") == 0) {
    if (strcmp(kw, "closed") != 0 && *arg != '\0')
      return fixture_parser_step_error(p, kw, "takes no argument");
    int conn = 0;
    if (step_conn(p, kw, prefix, &conn) != 0) return -1;
    fixture_step_kind_t kind = strcmp(kw, "closed") == 0 ? FIXTURE_STEP_CLOSED
                               : strcmp(kw, "open") == 0 ? FIXTURE_STEP_OPEN
                                                         : FIXTURE_STEP_CLOSE;
    fixture_step_t *st = fixture_parser_new_step(p, kind, line);
    if (st == NULL) return -1;
    st->conn = conn;
    st->flag = strcmp(kw, "reset") == 0;
    return kind == FIXTURE_STEP_CLOSED ? closed_step(p, st, arg) : 0;
  }
  if (strcmp(kw, "stall") == 0) return number_step(p, FIXTURE_STEP_STALL, kw, arg, prefix, line);
  if (prefix > 0) return fixture_parser_step_error(p, kw, "takes no connection (cN)");
  if (strcmp(kw, "wait") == 0) return number_step(p, FIXTURE_STEP_WAIT, kw, arg, 0, line);
  if (strcmp(kw, "http-delay") == 0)
    return number_step(p, FIXTURE_STEP_HTTP_DELAY, kw, arg, 0, line);
  if (strcmp(kw, "http-page-size") == 0)
    return number_step(p, FIXTURE_STEP_HTTP_PAGE, kw, arg, 0, line);
  if (strcmp(kw, "deadline") == 0) {
    if (!fixture_parser_ms(arg, 1, &p->deadline_ms))
      return fixture_parser_step_error(p, kw, "expected milliseconds in 1..600000");
    return 0;
  }
  if (strcmp(kw, "http") == 0 || strcmp(kw, "http~") == 0 || strcmp(kw, "!http") == 0 ||
      strcmp(kw, "!http~") == 0 || strcmp(kw, "log~") == 0 || strcmp(kw, "!log~") == 0)
    return side_step(p, kw, arg, line);
  if (strcmp(kw, "ping") == 0 || strcmp(kw, "listen") == 0) {
    bool on = false;
    if (on_off(p, kw, arg, &on) != 0) return -1;
    fixture_step_t *st =
        fixture_parser_new_step(p, kw[0] == 'p' ? FIXTURE_STEP_PING : FIXTURE_STEP_LISTEN, line);
    if (st == NULL) return -1;
    st->flag = on;
    return 0;
  }
  if (strcmp(kw, "http-fail") == 0) {
    char a[32], b[32], extra;
    int64_t status, count;
    if (sscanf(arg, "%31s %31s %c", a, b, &extra) != 2 ||
        !fixture_parser_int64(a, 0, 599, &status) || !fixture_parser_int64(b, 0, 1000000, &count) ||
        (status != 0 && status < 400))
      return fixture_parser_step_error(p, kw,
                                       "expected 'http-fail STATUS COUNT' with STATUS 400..599 (or "
                                       "'http-fail 0 0' to stop)");
    fixture_step_t *st = fixture_parser_new_step(p, FIXTURE_STEP_HTTP_FAIL, line);
    if (st == NULL) return -1;
    st->number = (int)status;
    st->number2 = (int)count;
    return 0;
  }
  if (strcmp(kw, "row") == 0) return row_step(p, arg, line);
  if (strcmp(kw, "metric") == 0 || strcmp(kw, "!metric") == 0 || strcmp(kw, "metric-mark") == 0 ||
      strcmp(kw, "sut-http") == 0 || strcmp(kw, "db") == 0 || strcmp(kw, "!db") == 0)
    return fixture_side_parse(p, kw, arg, line);
  if (strcmp(kw, "remote") == 0 || strcmp(kw, "!remote") == 0)
    return fixture_remote_parse(p, kw, arg, line);
  if (strcmp(kw, "terminate") == 0) {
    if (*arg != '\0') return fixture_parser_step_error(p, kw, "takes no argument");
    return fixture_parser_new_step(p, FIXTURE_STEP_TERMINATE, line) == NULL ? -1 : 0;
  }
  return rc_error_set(p->err, "%s:%d: unknown step '%s' (known: %s)", p->path, p->line, kw,
                      STEP_NAMES);
}
