#include "fixture_text.h"

#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_clock.h"
#include "rc_regex.h"

/* Placeholder names and what they are. */
typedef enum ph_kind {
  PH_LITERAL = 0,
  PH_SERVER_NAME,
  PH_INSTANCE_NAME,
  PH_WRITER,
  PH_SP,
  PH_NOW_MS, /* a value when sent, an integer wildcard when expected */
  PH_INT,
  PH_WORD,
  PH_ANY,
} ph_kind_t;

static const struct {
  const char *name;
  ph_kind_t kind;
} PLACEHOLDERS[] = {
    {"server_name", PH_SERVER_NAME},
    {"instance_name", PH_INSTANCE_NAME},
    {"writer", PH_WRITER},
    {"now_ms", PH_NOW_MS},
    {"int", PH_INT},
    {"word", PH_WORD},
    {"any", PH_ANY},
    {"sp", PH_SP},
};
#define PLACEHOLDER_COUNT (sizeof PLACEHOLDERS / sizeof PLACEHOLDERS[0])
#define KNOWN_LIST "server_name, instance_name, writer, now_ms, int, word, any, sp"

/* One piece of a text: literal bytes or a placeholder. */
typedef struct piece {
  const char *text; /* literal: points into the source (with '$${' meaning '${') */
  size_t len;
  ph_kind_t ph; /* 0 for a literal */
} piece_t;

/* Splits text at the next piece starting at *at. Returns 1 and fills p, 0 at the end,
 * -1 with err on a malformed placeholder. A literal "$${" yields the literal "${" (the
 * piece covers "$$" + "{" minus one '$': p->text points at the second '$'). */
static int next_piece(const char *text, size_t *at, piece_t *p, rc_error_t *err) {
  const char *s = text + *at;
  if (*s == '\0') return 0;
  if (s[0] == '$' && s[1] == '$' && s[2] == '{') {
    *p = (piece_t){.text = s + 1, .len = 2};
    *at += 3;
    return 1;
  }
  if (s[0] == '$' && s[1] == '{') {
    const char *close = strchr(s + 2, '}');
    if (close == NULL)
      return rc_error_set(err, "unterminated placeholder '%.20s' (write '$${' for a literal '${')",
                          s);
    size_t n = (size_t)(close - (s + 2));
    for (size_t i = 0; i < PLACEHOLDER_COUNT; i++) {
      if (strlen(PLACEHOLDERS[i].name) == n && strncmp(PLACEHOLDERS[i].name, s + 2, n) == 0) {
        *p = (piece_t){.text = s, .len = n + 3, .ph = PLACEHOLDERS[i].kind};
        *at += n + 3;
        return 1;
      }
    }
    return rc_error_set(err, "unknown placeholder '${%.*s}' (known: " KNOWN_LIST ")",
                        (int)(n > 40 ? 40 : n), s + 2);
  }
  size_t n = 0;
  while (s[n] != '\0' &&
         !(s[n] == '$' && (s[n + 1] == '{' || (s[n + 1] == '$' && s[n + 2] == '{'))))
    n++;
  *p = (piece_t){.text = s, .len = n};
  *at += n;
  return 1;
}

static bool is_wildcard(ph_kind_t k) {
  return k == PH_INT || k == PH_WORD || k == PH_ANY;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes escapes into out (at least strlen(text)+1 bytes); returns the length or -1. */
static long unescape(const char *text, char *out, rc_error_t *err) {
  size_t n = 0;
  for (const char *s = text; *s; s++) {
    if (*s != '\\') {
      out[n++] = *s;
      continue;
    }
    char c = *++s;
    if (c == 'n')
      out[n++] = '\n';
    else if (c == 'r')
      out[n++] = '\r';
    else if (c == 't')
      out[n++] = '\t';
    else if (c == '\\')
      out[n++] = '\\';
    else if (c == 'x' && hex_value(s[1]) >= 0 && hex_value(s[2]) >= 0) {
      out[n++] = (char)(hex_value(s[1]) * 16 + hex_value(s[2]));
      s += 2;
    } else if (c == '\0') {
      return rc_error_set(err, "a '\\' ends the text (write '\\\\' for a backslash)");
    } else {
      return rc_error_set(err, "unknown escape '\\%c' (known: \\n \\r \\t \\\\ \\xNN)", c);
    }
  }
  out[n] = '\0';
  return (long)n;
}

static const char *var_value(const fixture_vars_t *vars, ph_kind_t kind) {
  switch (kind) {
    case PH_SERVER_NAME:
      return vars->server_name ? vars->server_name : "";
    case PH_INSTANCE_NAME:
      return vars->instance_name ? vars->instance_name : "";
    case PH_WRITER:
      return vars->writer ? vars->writer : "master";
    case PH_SP:
      return " ";
    default:
      return "";
  }
}

/* A growing byte buffer. */
typedef struct buf {
  char *data;
  size_t len;
  size_t cap;
  bool failed;
} buf_t;

static void buf_add(buf_t *b, const char *bytes, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (b->len + n + 1 > cap) cap *= 2;
    char *grown = realloc(b->data, cap);
    if (grown == NULL) {
      b->failed = true;
      return;
    }
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, bytes, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s) {
  buf_add(b, s, strlen(s));
}

/* Appends a value to a regular expression, every special character made literal. */
static void buf_regex_literal(buf_t *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '^')
      buf_str(b, "\\^");
    else if (c == ']')
      buf_str(b, "[]]");
    else if (strchr(".[()*+?{}|$\\", c) != NULL) {
      char cls[4] = {'[', c, ']', '\0'};
      buf_str(b, cls);
    } else {
      buf_add(b, &c, 1);
    }
  }
}

/* The regular expression of a REGEX text, anchored; NULL with err. */
static char *regex_source(const char *text, const fixture_vars_t *vars, rc_error_t *err) {
  buf_t b = {0};
  buf_str(&b, "^(");
  size_t at = 0;
  piece_t p;
  int rc;
  while ((rc = next_piece(text, &at, &p, err)) == 1) {
    if (p.ph == 0)
      buf_add(&b, p.text, p.len);
    else if (p.ph == PH_INT || p.ph == PH_NOW_MS)
      buf_str(&b, "-?[0-9]+");
    else if (p.ph == PH_WORD)
      buf_str(&b, "[^ ]+");
    else if (p.ph == PH_ANY)
      buf_str(&b, ".*");
    else {
      const char *v = var_value(vars, p.ph);
      buf_regex_literal(&b, v, strlen(v));
    }
  }
  buf_str(&b, ")$");
  if (rc < 0 || b.failed) {
    if (b.failed) rc_error_set(err, "out of memory");
    free(b.data);
    return NULL;
  }
  return b.data;
}

static int compile_regex(regex_t *re, const char *source, rc_error_t *err) {
  /* Bounded: the text is the fixture author's, and glibc's regcomp can take gigabytes
   * for a few stacked quantifiers (found by fuzz/fuzz_fixture.c). */
  if (rc_regex_compile(re, source, REG_EXTENDED | REG_NOSUB, err) == 0) return 0;
  return rc_error_prefix(err, "bad regular expression");
}

int fixture_text_check(const char *text, fixture_text_use_t use, rc_error_t *err) {
  if (use == FIXTURE_TEXT_RAW) {
    char *out = malloc(strlen(text) + 1);
    if (out == NULL) return rc_error_set(err, "out of memory");
    long n = unescape(text, out, err);
    free(out);
    return n < 0 ? -1 : 0;
  }
  size_t at = 0;
  piece_t p;
  int rc;
  while ((rc = next_piece(text, &at, &p, err)) == 1) {
    if (use == FIXTURE_TEXT_SEND && is_wildcard(p.ph))
      return rc_error_set(err, "placeholder '%.*s' cannot be sent (only in expected lines)",
                          (int)p.len, p.text);
  }
  if (rc < 0) return -1;
  if (use != FIXTURE_TEXT_REGEX) return 0;
  fixture_vars_t sample = {"hs.example", "worker1", "master"};
  char *source = regex_source(text, &sample, err);
  if (source == NULL) return -1;
  regex_t re;
  rc = compile_regex(&re, source, err);
  if (rc == 0) regfree(&re);
  free(source);
  return rc;
}

char *fixture_text_expand(const char *text, fixture_text_use_t use, const fixture_vars_t *vars,
                          size_t *len) {
  if (use == FIXTURE_TEXT_RAW) {
    char *out = malloc(strlen(text) + 1);
    if (out == NULL) return NULL;
    long n = unescape(text, out, NULL);
    if (n < 0) {
      free(out);
      return NULL;
    }
    *len = (size_t)n;
    return out;
  }
  buf_t b = {0};
  buf_add(&b, "", 0);
  size_t at = 0;
  piece_t p;
  while (next_piece(text, &at, &p, NULL) == 1) {
    if (p.ph == 0) {
      buf_add(&b, p.text, p.len);
    } else if (p.ph == PH_NOW_MS) {
      char now[32];
      snprintf(now, sizeof now, "%lld", (long long)rc_clock_wall_ms());
      buf_str(&b, now);
    } else {
      buf_str(&b, var_value(vars, p.ph));
    }
  }
  if (b.failed) {
    free(b.data);
    return NULL;
  }
  *len = b.len;
  return b.data;
}

/* Length of the valid UTF-8 sequence starting at s (of at most n bytes), 0 if none. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
  size_t want = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
  if (want == 0 || s[0] > 0xf4 || want > n) return 0;
  for (size_t i = 1; i < want; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (want == 3 && s[0] == 0xe0 && s[1] < 0xa0) return 0;
  if (want == 3 && s[0] == 0xed && s[1] >= 0xa0) return 0;
  if (want == 4 && s[0] == 0xf0 && s[1] < 0x90) return 0;
  if (want == 4 && s[0] == 0xf4 && s[1] >= 0x90) return 0;
  return want;
}

char *fixture_text_escape(const char *bytes, size_t len) {
  buf_t b = {0};
  buf_add(&b, "", 0);
  const unsigned char *s = (const unsigned char *)bytes;
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    char hex[8];
    if (c == '\\') {
      buf_str(&b, "\\\\");
    } else if (c == '\n') {
      buf_str(&b, "\\n");
    } else if (c == '\r') {
      buf_str(&b, "\\r");
    } else if (c == '\t') {
      buf_str(&b, "\\t");
    } else if (c == ' ' && i + 1 == len) {
      buf_str(&b, "\\x20"); /* a trailing blank would not survive an editor */
    } else if (c >= 0x20 && c < 0x7f) {
      buf_add(&b, (const char *)s + i, 1);
    } else {
      size_t n = c >= 0x80 ? utf8_sequence(s + i, len - i) : 0;
      if (n > 0) {
        buf_add(&b, (const char *)s + i, n);
        i += n;
        continue;
      }
      snprintf(hex, sizeof hex, "\\x%02x", c);
      buf_str(&b, hex);
    }
    i++;
  }
  if (b.failed) {
    free(b.data);
    return NULL;
  }
  return b.data;
}

/* ---- matchers ----------------------------------------------------------------------- */

typedef struct segment {
  ph_kind_t kind; /* 0 = literal */
  size_t offset;  /* literal: into the matcher's bytes */
  size_t len;
} segment_t;

struct fixture_matcher {
  fixture_text_use_t use;
  char *bytes; /* PATTERN: literal bytes of all segments; RAW: the decoded text */
  size_t len;
  segment_t *segments;
  size_t segment_count;
  regex_t re;
  bool have_re;
};

void fixture_matcher_destroy(fixture_matcher_t *m) {
  if (m == NULL) return;
  if (m->have_re) regfree(&m->re);
  free(m->bytes);
  free(m->segments);
  free(m);
}

static int build_segments(fixture_matcher_t *m, const char *text, const fixture_vars_t *vars,
                          rc_error_t *err) {
  buf_t lits = {0};
  buf_add(&lits, "", 0);
  size_t cap = 8;
  m->segments = calloc(cap, sizeof *m->segments);
  if (m->segments == NULL) return rc_error_set(err, "out of memory");
  size_t at = 0;
  piece_t p;
  int rc;
  while ((rc = next_piece(text, &at, &p, err)) == 1) {
    bool wild = is_wildcard(p.ph) || p.ph == PH_NOW_MS;
    const char *v = p.ph == 0 ? p.text : wild ? NULL : var_value(vars, p.ph);
    size_t vlen = p.ph == 0 ? p.len : v ? strlen(v) : 0;
    segment_t *last = m->segment_count ? &m->segments[m->segment_count - 1] : NULL;
    if (!wild && last != NULL && last->kind == 0) {
      buf_add(&lits, v, vlen);
      last->len += vlen;
      continue;
    }
    if (m->segment_count == cap) {
      segment_t *grown = realloc(m->segments, 2 * cap * sizeof *grown);
      if (grown == NULL) break;
      m->segments = grown;
      cap *= 2;
    }
    segment_t *s = &m->segments[m->segment_count++];
    *s = (segment_t){.kind = wild ? (p.ph == PH_NOW_MS ? PH_INT : p.ph) : 0, .offset = lits.len};
    if (!wild) {
      buf_add(&lits, v, vlen);
      s->len = vlen;
    }
  }
  m->bytes = lits.data;
  if (rc < 0) return -1;
  if (lits.failed || rc > 0) return rc_error_set(err, "out of memory");
  return 0;
}

fixture_matcher_t *fixture_matcher_create(const char *text, fixture_text_use_t use,
                                          const fixture_vars_t *vars, rc_error_t *err) {
  fixture_matcher_t *m = calloc(1, sizeof *m);
  if (m == NULL) {
    rc_error_set(err, "out of memory");
    return NULL;
  }
  m->use = use;
  int rc = 0;
  if (use == FIXTURE_TEXT_RAW) {
    m->bytes = fixture_text_expand(text, use, vars, &m->len);
    if (m->bytes == NULL) rc = rc_error_set(err, "bad escapes in '%.60s'", text);
  } else if (use == FIXTURE_TEXT_REGEX) {
    char *source = regex_source(text, vars, err);
    rc = source == NULL ? -1 : compile_regex(&m->re, source, err);
    m->have_re = rc == 0;
    free(source);
  } else {
    rc = build_segments(m, text, vars, err);
  }
  if (rc != 0) {
    fixture_matcher_destroy(m);
    return NULL;
  }
  return m;
}

/* Backtracking over the wildcards; *budget bounds the work on pathological patterns. */
static bool match_segments(const fixture_matcher_t *m, size_t i, const char *line, size_t len,
                           size_t pos, long *budget) {
  if (--*budget < 0) return false;
  if (i == m->segment_count) return pos == len;
  const segment_t *s = &m->segments[i];
  size_t end = pos;
  switch (s->kind) {
    case PH_LITERAL:
      if (len - pos < s->len || memcmp(line + pos, m->bytes + s->offset, s->len) != 0) return false;
      return match_segments(m, i + 1, line, len, pos + s->len, budget);
    case PH_INT: {
      size_t digits = pos < len && line[pos] == '-' ? pos + 1 : pos;
      end = digits;
      while (end < len && line[end] >= '0' && line[end] <= '9') end++;
      for (; end > digits; end--)
        if (match_segments(m, i + 1, line, len, end, budget)) return true;
      return false;
    }
    case PH_WORD:
      while (end < len && line[end] != ' ') end++;
      for (; end > pos; end--)
        if (match_segments(m, i + 1, line, len, end, budget)) return true;
      return false;
    default: /* PH_ANY; values were merged into literals */
      for (end = len;; end--) {
        if (match_segments(m, i + 1, line, len, end, budget)) return true;
        if (end == pos) return false;
      }
  }
}

bool fixture_matcher_test(const fixture_matcher_t *m, const char *line, size_t len) {
  if (m->use == FIXTURE_TEXT_RAW) return len == m->len && memcmp(line, m->bytes, len) == 0;
  if (m->use == FIXTURE_TEXT_REGEX) {
    if (memchr(line, '\0', len) != NULL) return false; /* regexec would see a shorter line */
    return regexec(&m->re, line, 0, NULL, 0) == 0;
  }
  long budget = 1000000;
  return match_segments(m, 0, line, len, 0, &budget);
}
