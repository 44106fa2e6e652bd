/* A validating JSON scanner (RFC 8259) that builds nothing: one pass, no allocation,
 * no recursion. The container stack holds the closing byte of each open container
 * (256 bytes on the C stack), which is also why nesting is capped at 256. Strings are
 * skipped 16 bytes at a time (SSE2; 8 with SWAR elsewhere) and digits 8 at a time: rows
 * are mostly ASCII strings (event ids, room ids, tokens) and timestamps. Every change
 * here is checked against the plain validator in tests/json_reference.h (test_proto,
 * fuzz_proto). */
#include "proto_internal.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL
#define MAX_DEPTH 256

static inline uint64_t load64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

static inline bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

/* Index of the first '"', '\\', control byte (< 0x20) or non-ASCII byte at or after
 * p, or len. */
static inline __attribute__((always_inline)) size_t skip_string_plain(const unsigned char *s,
                                                                      size_t p, size_t len) {
#if defined(__SSE2__)
  if (p + 16 <= len) {
    /* Most strings of a row end within 16 bytes: one load, no overlap arithmetic. */
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + p));
    __m128i special = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
        _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
    unsigned mask = (unsigned)_mm_movemask_epi8(special);
    if (mask != 0) return p + (size_t)__builtin_ctz(mask);
    p += 16;
  }
  if (len >= 16) {
    /* One signed compare finds both the control bytes and the non-ASCII ones; the
     * last load overlaps the previous one instead of falling back to bytes. */
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x20);
    while (p < len) {
      size_t at = p + 16 <= len ? p : len - 16;
      __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + at));
      __m128i special =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                       _mm_cmplt_epi8(v, control));
      unsigned mask = (unsigned)_mm_movemask_epi8(special) >> (p - at);
      if (mask != 0) return p + (size_t)__builtin_ctz(mask);
      p = at + 16;
    }
    return len;
  }
#endif
  while (p + 8 <= len) {
    uint64_t w = load64(s + p);
    uint64_t q = w ^ (0x22ULL * ONES);
    uint64_t b = w ^ (0x5CULL * ONES);
    uint64_t m = ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - 0x20ULL * ONES) & ~w) | w;
    if ((m & HIGH) != 0) break;
    p += 8;
  }
  while (p < len && s[p] != '"' && s[p] != '\\' && s[p] >= 0x20 && s[p] < 0x80) p++;
  return p;
}

/* String scanning returns the position after what it read, or FAILED | the offending
 * offset with *why set, so that the caller's position stays in a register. */
#define FAILED ((size_t)1 << (sizeof(size_t) * 8 - 1))

static size_t fail_at(size_t at, const char **why, const char *reason) {
  *why = reason;
  return FAILED | at;
}

/* The rest of a string from s[p] on, where s[p] is not a plain byte: escapes,
 * control bytes, non-ASCII, or the end. Out of line: row strings rarely have them. */
static size_t scan_string_rest(const unsigned char *s, size_t len, size_t p, const char **why) {
  for (;;) {
    if (p >= len) return fail_at(len, why, "unterminated string");
    unsigned char c = s[p];
    if (c == '"') return p + 1;
    if (c == '\\') {
      if (p + 1 >= len) return fail_at(len, why, "unterminated string");
      size_t n = proto_json_escape_length(s, p, len);
      if (n == 0) {
        return fail_at(p, why,
                       s[p + 1] == 'u' ? "\\u must be followed by four hex digits"
                                       : "invalid escape in a string");
      }
      p += n;
    } else if (c < 0x20) {
      return fail_at(p, why, "control character in a string (must be escaped)");
    } else {
      size_t n = proto_utf8_sequence_length(s + p, len - p);
      if (n == 0) return fail_at(p, why, "ill-formed UTF-8 in a string");
      p += n;
    }
    p = skip_string_plain(s, p, len);
  }
}

/* s[p] is the opening quote: the position just past the closing one, or FAILED | the
 * offending offset. */
static inline __attribute__((always_inline)) size_t scan_string(const unsigned char *s, size_t len,
                                                                size_t p, const char **why) {
  p = skip_string_plain(s, p + 1, len);
  if (p < len && s[p] == '"') return p + 1;
  return scan_string_rest(s, len, p, why);
}

/* Index of the first non-digit at or after p, or len; eight digits per step (tokens and
 * timestamps in rows are 10-13 digits). */
static inline size_t skip_digits(const unsigned char *s, size_t p, size_t len) {
  while (p + 8 <= len) {
    unsigned n = proto_leading_digits(load64(s + p));
    p += n;
    if (n < 8) return p;
  }
  while (p < len && is_digit(s[p])) p++;
  return p;
}

/* s[p] is '-' or a digit: the position after the number, or FAILED | the offending
 * offset. */
static size_t scan_number(const unsigned char *s, size_t len, size_t p, const char **why) {
  size_t start = p;
  if (s[p] == '-') p++;
  if (p < len && (s[p] == 'I' || s[p] == 'N'))
    return fail_at(start, why, "NaN and Infinity are not JSON");
  if (p >= len || !is_digit(s[p])) return fail_at(p, why, "expected a digit");
  if (s[p] == '0') {
    p++;
    if (p < len && is_digit(s[p])) return fail_at(p, why, "leading zero in a number");
  } else {
    p = skip_digits(s, p, len);
  }
  if (p < len && s[p] == '.') {
    p++;
    if (p >= len || !is_digit(s[p]))
      return fail_at(p, why, "expected a digit after the decimal point");
    p = skip_digits(s, p, len);
  }
  if (p < len && (s[p] == 'e' || s[p] == 'E')) {
    p++;
    if (p < len && (s[p] == '+' || s[p] == '-')) p++;
    if (p >= len || !is_digit(s[p])) return fail_at(p, why, "expected a digit in the exponent");
    p = skip_digits(s, p, len);
  }
  return p;
}

/* 1: JSON whitespace allowed in a line; 2: JSON whitespace a line may not contain. */
static const unsigned char whitespace_class[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 2, ['\r'] = 2};

bool proto_json_check(const char *buf, size_t len, bool line_mode, proto_json_result_t *res) {
  const unsigned char *s = (const unsigned char *)buf;
  /* closers[d]: the byte that closes the container at depth d + 1. Only the entries
   * below depth are read, so the array needs no initialisation. */
  unsigned char closers[MAX_DEPTH];
  unsigned depth = 0;
  unsigned char closer = 0; /* closers[depth - 1], cached; 0 at the top level */
  size_t top_items = 0;
  const char *why = NULL;
  char top = 0;
  size_t p = 0;
  const unsigned ws = line_mode ? 1u : 3u;
#define SKIP_WHITESPACE() \
  while (p < len && (whitespace_class[s[p]] & ws) != 0) p++

  if (s == NULL) len = 0;
  SKIP_WHITESPACE();
  if (p >= len) {
    why = "expected a JSON value, got nothing";
    goto fail;
  }
  top = (char)s[p];

value:
  if (p >= len) {
    why = "expected a JSON value, got the end";
    goto fail;
  }
  /* Strings are most of a row's values: test for them before the general dispatch. */
  if (s[p] == '"') {
    p = scan_string(s, len, p, &why);
    if (p & FAILED) goto failed;
    goto after_value;
  }
  switch (s[p]) {
    case '{':
    case '[':
      if (depth == MAX_DEPTH) {
        why = "nesting deeper than 256";
        goto fail;
      }
      closer = s[p] == '{' ? '}' : ']';
      closers[depth++] = closer;
      p++;
      SKIP_WHITESPACE();
      if (depth == 1) top_items = 1;
      if (p < len && s[p] == closer) {
        if (depth == 1) top_items = 0;
        goto close;
      }
      if (closer == '}') goto key;
      goto value;
    case 't':
      if (len - p < 4 || memcmp(s + p, "true", 4) != 0) goto bad_literal;
      p += 4;
      goto after_value;
    case 'f':
      if (len - p < 5 || memcmp(s + p, "false", 5) != 0) goto bad_literal;
      p += 5;
      goto after_value;
    case 'n':
      if (len - p < 4 || memcmp(s + p, "null", 4) != 0) goto bad_literal;
      p += 4;
      goto after_value;
    case 'N':
    case 'I':
      why = "NaN and Infinity are not JSON";
      goto fail;
    default:
      if (s[p] == '-' || is_digit(s[p])) {
        p = scan_number(s, len, p, &why);
        if (p & FAILED) goto failed;
        goto after_value;
      }
      why = "expected a JSON value";
      goto fail;
  }

key:
  if (p >= len || s[p] != '"') {
    why = "expected '\"' to start an object key";
    goto fail;
  }
  p = scan_string(s, len, p, &why);
  if (p & FAILED) goto failed;
  SKIP_WHITESPACE();
  if (p >= len || s[p] != ':') {
    why = "expected ':' after an object key";
    goto fail;
  }
  p++;
  SKIP_WHITESPACE();
  goto value;

close:
  p++;
  depth--;
  closer = depth > 0 ? closers[depth - 1] : 0;
after_value:
  if (depth == 0) {
    SKIP_WHITESPACE();
    if (p != len) {
      why = "unexpected data after the JSON value";
      goto fail;
    }
    if (res != NULL) {
      res->bad_offset = 0;
      res->why = NULL;
      res->top = top;
      res->top_items = top_items;
    }
    return true;
  }
  {
    /* Rows are compact: a ',' or the closing byte usually follows a value directly. A
     * NUL stands for the end, which neither matches nor is whitespace. */
    unsigned char c = p < len ? s[p] : 0;
    if ((whitespace_class[c] & ws) != 0) {
      SKIP_WHITESPACE();
      c = p < len ? s[p] : 0;
    }
    if (c == ',') {
      if (depth == 1) top_items++;
      p++;
      SKIP_WHITESPACE();
      if (closer == '}') goto key;
      goto value;
    }
    if (c == closer) goto close;
  }
  why = closer == '}' ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array";
  goto fail;
#undef SKIP_WHITESPACE

bad_literal:
  why = "invalid literal (expected true, false or null)";
  goto fail;
failed:
  p &= ~FAILED;
fail:
  if (res != NULL) {
    res->bad_offset = p;
    res->why = why;
    res->top = top;
    res->top_items = top_items;
  }
  return false;
}

bool proto_json_valid(const char *buf, size_t len, size_t *bad_offset) {
  proto_json_result_t res;
  bool ok = proto_json_check(buf, len, false, &res);
  if (!ok && bad_offset != NULL) *bad_offset = res.bad_offset;
  return ok;
}
