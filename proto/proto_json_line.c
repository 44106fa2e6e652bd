/* The parser's fast JSON check of an RDATA row: it only decides "valid in line mode"
 * and leaves every refusal, with its offset and reason, to proto_json_check(), which
 * the parser then runs (the reference parser does). Its verdict is proto_json_check()'s
 * for every input: test_proto (test_json_against_reference through jref_compare,
 * test_parse_against_reference) and fuzz_proto compare them.
 *
 * Why it is faster: the value is copied into a buffer with zero bytes after it, so no
 * read needs a bounds check. A zero byte is neither a token, nor whitespace, nor a
 * plain string byte, so every scan stops at the end by itself and then fails a test
 * the real end would fail too. Strings are skipped 16 bytes at a time without the
 * arithmetic for a last, overlapping block. */
#include "proto_internal.h"

#include <string.h>

#if defined(__SSE2__)

#define MAX_DEPTH 256
/* Zero bytes after the copy: the widest load that starts at or before the end. */
#define PADDING 16

static inline uint64_t load64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

static inline uint32_t load32(const unsigned char *p) {
  uint32_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

static inline bool is_digit(unsigned char c) {
  return (unsigned)(c - '0') <= 9u;
}

/* Index of the first '"', '\\', control byte or non-ASCII byte at or after p. The zero
 * bytes after the copy stop it. */
static inline __attribute__((always_inline)) size_t skip_plain(const unsigned char *s, size_t p) {
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control = _mm_set1_epi8(0x20);
  for (;;) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + p));
    __m128i special =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                     _mm_cmplt_epi8(v, control));
    unsigned mask = (unsigned)_mm_movemask_epi8(special);
    if (mask != 0) return p + (size_t)__builtin_ctz(mask);
    p += 16;
  }
}

/* s[p] is an escape or a non-ASCII byte inside a string (anything else there ends
 * the scan as invalid): the position after the closing quote, or 0 when the string
 * is not valid. Out of line: row strings rarely have them. */
static __attribute__((noinline)) size_t scan_string_rest(const unsigned char *s, size_t len,
                                                         size_t p) {
  for (;;) {
    unsigned char c = s[p];
    if (c == '"') return p + 1;
    if (c == '\\') {
      /* The zero bytes after the end are not part of any escape. */
      size_t n = proto_json_escape_length(s, p, len);
      if (n == 0) return 0;
      p += n;
    } else if (c >= 0x80) {
      size_t n = proto_utf8_sequence_length(s + p, len - p);
      if (n == 0) return 0;
      p += n;
    } else {
      return 0; /* a control byte, or the end */
    }
    p = skip_plain(s, p);
  }
}

/* Index of the first non-digit at or after p, eight digits per step; the zero bytes
 * after the copy stop it. */
static inline size_t skip_digits(const unsigned char *s, size_t p) {
  for (;;) {
    unsigned n = proto_leading_digits(load64(s + p));
    p += n;
    if (n < 8) return p;
  }
}

/* s[p] is '-' or a digit: the position after the number, or 0 when it is not one. */
static inline size_t scan_number(const unsigned char *s, size_t p) {
  if (s[p] == '-') p++;
  if (s[p] == '0') {
    p++;
    if (is_digit(s[p])) return 0;
  } else if (is_digit(s[p])) {
    p = skip_digits(s, p);
  } else {
    return 0;
  }
  if (s[p] == '.') {
    p++;
    if (!is_digit(s[p])) return 0;
    p = skip_digits(s, p);
  }
  if ((s[p] | 0x20) == 'e') {
    p++;
    if (s[p] == '+' || s[p] == '-') p++;
    if (!is_digit(s[p])) return 0;
    p = skip_digits(s, p);
  }
  return p;
}

static inline bool literal_at(const unsigned char *s, size_t p, const char word[4]) {
  return load32(s + p) == load32((const unsigned char *)word);
}

/* s[p] is the opening quote: the position after the closing one, or 0. */
static inline __attribute__((always_inline)) size_t scan_string(const unsigned char *s, size_t len,
                                                                size_t p) {
  size_t q = skip_plain(s, p + 1);
  if (s[q] == '"') return q + 1;
  return scan_string_rest(s, len, q);
}

/* A scalar at s[p] (not a container, not whitespace): the position after it, or 0. */
static inline __attribute__((always_inline)) size_t scan_scalar(const unsigned char *s, size_t len,
                                                                size_t p) {
  switch (s[p]) {
    case '"':
      return scan_string(s, len, p);
    case 't':
      return literal_at(s, p, "true") ? p + 4 : 0;
    case 'f':
      return s[p + 4] == 'e' && literal_at(s, p, "fals") ? p + 5 : 0;
    case 'n':
      return literal_at(s, p, "null") ? p + 4 : 0;
    default:
      return scan_number(s, p);
  }
}

static inline size_t skip_whitespace(const unsigned char *s, size_t p) {
  while (s[p] == ' ' || s[p] == '\t') p++;
  return p;
}

/* The checking walk over the padded copy s[0..len). Line mode allows only spaces and
 * tabs between tokens; the compact rows a main writes have none, so whitespace is
 * only looked for where the expected byte is not found. Inside a container the walk
 * never meets depth 0, so after a value only ',' and the closing byte are tested. */
static bool check_padded(const unsigned char *s, size_t len) {
  unsigned char closers[MAX_DEPTH];
  unsigned depth = 0;
  unsigned char closer;
  size_t p = skip_whitespace(s, 0);
  if (s[p] != '[' && s[p] != '{') {
    p = scan_scalar(s, len, p);
    return p != 0 && skip_whitespace(s, p) == len;
  }

open:
  if (depth == MAX_DEPTH) return false;
  closer = s[p] == '{' ? '}' : ']';
  closers[depth++] = closer;
  p++;
  if (s[p] == closer) goto close;
  if (s[p] == ' ' || s[p] == '\t') {
    p = skip_whitespace(s, p);
    if (s[p] == closer) goto close;
  }
  if (closer == '}') goto key;

value:
  switch (s[p]) {
    case '"':
      p = scan_string(s, len, p);
      if (p == 0) return false;
      break;
    case '[':
    case '{':
      goto open;
    case ' ':
    case '\t':
      p = skip_whitespace(s, p);
      goto value;
    default:
      p = scan_scalar(s, len, p);
      if (p == 0) return false;
      break;
  }

after_value:
  if (s[p] == ',') {
    p++;
    if (closer == ']') goto value;
    goto key;
  }
  if (s[p] == closer) goto close;
  if (s[p] == ' ' || s[p] == '\t') {
    p = skip_whitespace(s, p);
    goto after_value;
  }
  return false;

key:
  if (s[p] != '"') {
    if (s[p] != ' ' && s[p] != '\t') return false;
    p = skip_whitespace(s, p);
    if (s[p] != '"') return false;
  }
  p = scan_string(s, len, p);
  if (p == 0) return false;
  p = skip_whitespace(s, p);
  if (s[p] != ':') return false;
  p++;
  goto value;

close:
  p++;
  if (--depth == 0) return skip_whitespace(s, p) == len;
  closer = closers[depth - 1];
  goto after_value;
}

bool proto_json_line_valid(const char *buf, size_t len) {
  if (len > PROTO_MAX_LINE) return false;
  /* 16 KiB of stack, of which only the row's bytes are touched: a row may be as long
   * as a line, and an allocation would cost more than the check. */
  unsigned char copy[PROTO_MAX_LINE + PADDING];
  memcpy(copy, buf, len);
  memset(copy + len, 0, PADDING);
  return check_padded(copy, len);
}

#else

bool proto_json_line_valid(const char *buf, size_t len) {
  return proto_json_check(buf, len, true, NULL); /* no short way without SSE2 */
}

#endif
