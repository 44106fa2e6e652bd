/* A reference JSON validator for differential tests of the codec's (proto_json.c): byte
 * at a time, recursive descent, written to be read rather than to be fast. It follows
 * RFC 8259 with the codec's documented choices (proto.h): nesting at most 256, "\u"
 * takes any four hex digits (lone surrogates included, as Python's decoder does), CR
 * and LF are whitespace except in line mode, and it reports the same offending offset
 * and reason as the codec, so a difference in either is a bug in one of them.
 *
 * jref_compare() runs both on one input, in both modes (line mode through the row of
 * an RDATA line, as the parser sees it, and through the parser's short way,
 * proto_json_line_valid()), and describes the first difference.
 *
 * pref_compare() compares the parser's short way with the complete parser it must
 * match: proto_parse_line() against proto_parse_line_reference() (proto_internal.h),
 * every output field, slice pointers included, and every field of the error.
 * Header-only (static functions): used by tests/test_proto.c and fuzz/fuzz_proto.c. */
#ifndef JSON_REFERENCE_H
#define JSON_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "proto_internal.h"

typedef struct jref {
  const unsigned char *s;
  size_t len;
  size_t p;
  bool line_mode;
  const char *why; /* reason of the failure */
  size_t bad;      /* offset of the failure */
} jref_t;

static bool jref_fail(jref_t *j, size_t at, const char *why) {
  j->bad = at;
  j->why = why;
  return false;
}

/* Length of the well-formed UTF-8 sequence at s (1 for ASCII), 0 when ill-formed:
 * decode the code point, then refuse overlong forms, surrogates and > U+10FFFF. */
static size_t jref_utf8_length(const unsigned char *s, size_t avail) {
  unsigned char c = s[0];
  size_t n;
  uint32_t cp, min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (avail < n) return 0;
  for (size_t k = 1; k < n; k++) {
    if ((s[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

/* Offset of the first byte a line may not hold (NUL, CR, LF, ill-formed UTF-8), or len. */
static size_t jref_first_bad_byte(const unsigned char *s, size_t len) {
  size_t p = 0;
  while (p < len) {
    if (s[p] == 0 || s[p] == '\r' || s[p] == '\n') return p;
    size_t n = jref_utf8_length(s + p, len - p);
    if (n == 0) return p;
    p += n;
  }
  return len;
}

static bool jref_is_space(const jref_t *j, unsigned char c) {
  if (c == ' ' || c == '\t') return true;
  return !j->line_mode && (c == '\n' || c == '\r');
}

static void jref_skip_space(jref_t *j) {
  while (j->p < j->len && jref_is_space(j, j->s[j->p])) j->p++;
}

static bool jref_is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

static bool jref_is_hex(unsigned char c) {
  return jref_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool jref_string(jref_t *j) {
  size_t p = j->p + 1; /* past the opening quote */
  for (;;) {
    if (p >= j->len) return jref_fail(j, j->len, "unterminated string");
    unsigned char c = j->s[p];
    if (c == '"') {
      j->p = p + 1;
      return true;
    }
    if (c == '\\') {
      if (p + 1 >= j->len) return jref_fail(j, j->len, "unterminated string");
      unsigned char e = j->s[p + 1];
      if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
          e == 't') {
        p += 2;
      } else if (e == 'u') {
        for (size_t k = 2; k < 6; k++) {
          if (p + k >= j->len || !jref_is_hex(j->s[p + k]))
            return jref_fail(j, p, "\\u must be followed by four hex digits");
        }
        p += 6;
      } else {
        return jref_fail(j, p, "invalid escape in a string");
      }
      continue;
    }
    if (c < 0x20) return jref_fail(j, p, "control character in a string (must be escaped)");
    size_t n = jref_utf8_length(j->s + p, j->len - p);
    if (n == 0) return jref_fail(j, p, "ill-formed UTF-8 in a string");
    p += n;
  }
}

static bool jref_number(jref_t *j) {
  size_t start = j->p, p = j->p;
  if (j->s[p] == '-') p++;
  if (p < j->len && (j->s[p] == 'I' || j->s[p] == 'N'))
    return jref_fail(j, start, "NaN and Infinity are not JSON");
  if (p >= j->len || !jref_is_digit(j->s[p])) return jref_fail(j, p, "expected a digit");
  if (j->s[p] == '0') {
    p++;
    if (p < j->len && jref_is_digit(j->s[p])) return jref_fail(j, p, "leading zero in a number");
  } else {
    while (p < j->len && jref_is_digit(j->s[p])) p++;
  }
  if (p < j->len && j->s[p] == '.') {
    p++;
    if (p >= j->len || !jref_is_digit(j->s[p]))
      return jref_fail(j, p, "expected a digit after the decimal point");
    while (p < j->len && jref_is_digit(j->s[p])) p++;
  }
  if (p < j->len && (j->s[p] == 'e' || j->s[p] == 'E')) {
    p++;
    if (p < j->len && (j->s[p] == '+' || j->s[p] == '-')) p++;
    if (p >= j->len || !jref_is_digit(j->s[p]))
      return jref_fail(j, p, "expected a digit in the exponent");
    while (p < j->len && jref_is_digit(j->s[p])) p++;
  }
  j->p = p;
  return true;
}

static bool jref_literal(jref_t *j, const char *word) {
  size_t n = strlen(word);
  if (j->len - j->p < n || memcmp(j->s + j->p, word, n) != 0)
    return jref_fail(j, j->p, "invalid literal (expected true, false or null)");
  j->p += n;
  return true;
}

/* `depth`: containers already open around this value. Entered after whitespace. */
static bool jref_value(jref_t *j, unsigned depth) {
  if (j->p >= j->len) return jref_fail(j, j->len, "expected a JSON value, got the end");
  unsigned char c = j->s[j->p];
  if (c == '"') return jref_string(j);
  if (c == 't') return jref_literal(j, "true");
  if (c == 'f') return jref_literal(j, "false");
  if (c == 'n') return jref_literal(j, "null");
  if (c == 'N' || c == 'I') return jref_fail(j, j->p, "NaN and Infinity are not JSON");
  if (c == '-' || jref_is_digit(c)) return jref_number(j);
  if (c != '[' && c != '{') return jref_fail(j, j->p, "expected a JSON value");

  if (depth == 256) return jref_fail(j, j->p, "nesting deeper than 256");
  bool object = c == '{';
  unsigned char close = object ? '}' : ']';
  j->p++;
  jref_skip_space(j);
  if (j->p < j->len && j->s[j->p] == close) {
    j->p++;
    return true;
  }
  for (;;) {
    if (object) {
      if (j->p >= j->len || j->s[j->p] != '"')
        return jref_fail(j, j->p, "expected '\"' to start an object key");
      if (!jref_string(j)) return false;
      jref_skip_space(j);
      if (j->p >= j->len || j->s[j->p] != ':')
        return jref_fail(j, j->p, "expected ':' after an object key");
      j->p++;
      jref_skip_space(j);
    }
    if (!jref_value(j, depth + 1)) return false;
    jref_skip_space(j);
    if (j->p < j->len && j->s[j->p] == ',') {
      j->p++;
      jref_skip_space(j);
      continue;
    }
    if (j->p < j->len && j->s[j->p] == close) {
      j->p++;
      return true;
    }
    return jref_fail(
        j, j->p, object ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array");
  }
}

/* Validates s[0..len); fills j (why and bad on failure). */
static bool jref_check(const char *s, size_t len, bool line_mode, jref_t *j) {
  memset(j, 0, sizeof *j);
  j->s = (const unsigned char *)s;
  j->len = len;
  j->line_mode = line_mode;
  jref_skip_space(j);
  if (j->p >= len) return jref_fail(j, len, "expected a JSON value, got nothing");
  if (!jref_value(j, 0)) return false;
  jref_skip_space(j);
  if (j->p != len) return jref_fail(j, j->p, "unexpected data after the JSON value");
  return true;
}

/* Compares the codec with the reference on `json`: proto_json_valid() (verdict and
 * offset), and the parser on "RDATA events master 5 <json>" (line mode: verdict, error
 * code, offset, the reason in the message). Returns NULL when they agree, otherwise
 * a description of the difference in `diff`. */
static const char *jref_compare(const char *json, size_t len, char *diff, size_t cap) {
  jref_t j;
  bool want = jref_check(json, len, false, &j);
  size_t bad = 0;
  bool got = proto_json_valid(json, len, &bad);
  if (want != got || (!want && bad != j.bad)) {
    snprintf(diff, cap, "proto_json_valid: reference %s (offset %zu: %s), codec %s (offset %zu)",
             want ? "valid" : "invalid", j.bad, want ? "-" : j.why, got ? "valid" : "invalid", bad);
    return diff;
  }

  static const char head[] = "RDATA events master 5 ";
  static char line[PROTO_MAX_LINE + 1];
  size_t hlen = sizeof head - 1;
  if (len > PROTO_MAX_LINE - hlen) return NULL;
  memcpy(line, head, hlen);
  if (len > 0) memcpy(line + hlen, json, len);
  want = jref_check(json, len, true, &j);
  if (proto_json_line_valid(json, len) != want) {
    snprintf(diff, cap, "proto_json_line_valid: reference %s in line mode (%s), short way %s",
             want ? "valid" : "invalid", want ? "-" : j.why, want ? "gives up" : "valid");
    return diff;
  }
  proto_error_code_t want_code = PROTO_OK;
  size_t want_offset = 0;
  if (!want) {
    size_t bytes = jref_first_bad_byte((const unsigned char *)json, len);
    want_code = bytes < len ? PROTO_ERR_BAD_BYTES : PROTO_ERR_BAD_FIELD;
    want_offset = hlen + (bytes < len ? bytes : j.bad);
  }
  proto_command_t cmd;
  proto_error_t err;
  proto_error_code_t rc =
      proto_parse_line(PROTO_DIALECT_MODERN, PROTO_SENDER_SERVER, line, hlen + len, &cmd, &err);
  bool same = rc == want_code;
  if (same && rc == PROTO_OK) same = cmd.row.ptr == line + hlen && cmd.row.len == len;
  if (same && rc != PROTO_OK) same = err.offset == want_offset;
  if (same && rc == PROTO_ERR_BAD_FIELD) same = strstr(err.message, j.why) != NULL;
  if (!same) {
    snprintf(diff, cap,
             "line mode: reference code %d offset %zu (%s), codec code %d offset %zu (%s)",
             (int)want_code, want_offset, want ? "-" : j.why, (int)rc,
             rc == PROTO_OK ? (size_t)0 : err.offset, rc == PROTO_OK ? "-" : err.message);
    return diff;
  }
  return NULL;
}

static bool pref_slice_same(proto_slice_t a, proto_slice_t b) {
  return a.ptr == b.ptr && a.len == b.len;
}

/* proto_parse_line() against proto_parse_line_reference() on one line: NULL when the
 * result, every field of the command and every field of the error are the same (and
 * the result with out and err NULL), otherwise the first difference in `diff`. */
static const char *pref_compare(proto_dialect_t dialect, proto_sender_t sender, const char *line,
                                size_t len, char *diff, size_t cap) {
  proto_command_t a, b;
  proto_error_t ea, eb;
  /* Different garbage before the call: neither may rely on the caller's bytes. */
  memset(&a, 0xA5, sizeof a);
  memset(&b, 0x5A, sizeof b);
  memset(&ea, 0xA5, sizeof ea);
  memset(&eb, 0x5A, sizeof eb);
  proto_error_code_t ra = proto_parse_line(dialect, sender, line, len, &a, &ea);
  proto_error_code_t rb = proto_parse_line_reference(dialect, sender, line, len, &b, &eb);
  const char *what = NULL;
  if (ra != rb) {
    what = "result";
  } else if (a.kind != b.kind || a.trailing_space != b.trailing_space) {
    what = "kind or trailing_space";
  } else if (!pref_slice_same(a.name, b.name) || !pref_slice_same(a.data, b.data) ||
             !pref_slice_same(a.text, b.text) || !pref_slice_same(a.stream, b.stream) ||
             !pref_slice_same(a.instance, b.instance) || !pref_slice_same(a.row, b.row) ||
             !pref_slice_same(a.user_id, b.user_id) ||
             !pref_slice_same(a.device_id, b.device_id) ||
             !pref_slice_same(a.app_id, b.app_id) || !pref_slice_same(a.push_key, b.push_key) ||
             !pref_slice_same(a.cache_func, b.cache_func)) {
    what = "a slice";
  } else if (a.token_is_batch != b.token_is_batch || a.token_is_now != b.token_is_now ||
             a.has_device_id != b.has_device_id || a.sync_start != b.sync_start ||
             a.token != b.token || a.prev_token != b.prev_token || a.new_token != b.new_token ||
             a.last_sync_ms != b.last_sync_ms) {
    what = "a flag or number";
  } else if (ea.code != eb.code || ea.kind != eb.kind || ea.offset != eb.offset ||
             (ea.field == NULL) != (eb.field == NULL) ||
             (ea.field != NULL && strcmp(ea.field, eb.field) != 0)) {
    what = "the error's code, kind, field or offset";
  } else if (strcmp(ea.message, eb.message) != 0) {
    what = "the error message";
  } else if (proto_parse_line(dialect, sender, line, len, NULL, NULL) != rb) {
    what = "the result with out and err NULL";
  }
  if (what == NULL) return NULL;
  snprintf(diff, cap,
           "proto_parse_line differs from the reference (dialect %d, sender %d) in %s: "
           "result %d/%d, kind %d/%d, error offset %zu/%zu, message '%s' / '%s'",
           (int)dialect, (int)sender, what, (int)ra, (int)rb, (int)a.kind, (int)b.kind, ea.offset,
           eb.offset, ea.message, eb.message);
  return diff;
}

#endif
