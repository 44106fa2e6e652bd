/* Byte-level helpers: UTF-8 well-formedness, forbidden bytes, integers, slices and
 * the error filler. The scanner looks at 16 bytes per step (SSE2, or 8 with SWAR
 * elsewhere) because every inbound line goes through it and most are plain ASCII. */
#include "proto_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

static inline uint64_t load64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

size_t proto_utf8_sequence_length(const unsigned char *p, size_t avail) {
  unsigned char c = p[0];
  /* Unicode Table 3-7: the second byte's range depends on the lead byte, which is
   * what rules out overlong forms, surrogates and code points above U+10FFFF. */
  if (c >= 0xC2 && c <= 0xDF) {
    return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (avail < 3) return 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (avail < 4) return 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
    return 4;
  }
  return 0;
}

/* Index of the first byte at or after i that is below 0x0E (NUL, LF, CR; a tab only
 * costs a slow step) or non-ASCII, or len. */
static inline size_t skip_plain(const unsigned char *s, size_t i, size_t len) {
#if defined(__SSE2__)
  if (len >= 16) {
    /* Signed compare: bytes >= 0x80 are negative, so one compare finds both kinds.
     * The last load overlaps the previous one instead of falling back to bytes. */
    const __m128i limit = _mm_set1_epi8(0x0E);
    while (i < len) {
      size_t at = i + 16 <= len ? i : len - 16;
      __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + at));
      unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(v, limit)) >> (i - at);
      if (mask != 0) return i + (size_t)__builtin_ctz(mask);
      i = at + 16;
    }
    return len;
  }
#endif
  while (i + 8 <= len) {
    uint64_t w = load64(s + i);
    if ((((w - 0x0EULL * ONES) | w) & HIGH) != 0) break;
    i += 8;
  }
  while (i < len && s[i] >= 0x0E && s[i] < 0x80) i++;
  return i;
}

size_t proto_bytes_first_bad(const char *p, size_t len) {
  const unsigned char *s = (const unsigned char *)p;
  size_t i = 0;
  while ((i = skip_plain(s, i, len)) < len) {
    unsigned char c = s[i];
    if (c < 0x80) {
      if (c == 0 || c == '\r' || c == '\n') return i;
      i++;
      continue;
    }
    size_t n = proto_utf8_sequence_length(s + i, len - i);
    if (n == 0) return i;
    i += n;
  }
  return len;
}

size_t proto_utf8_first_invalid(const char *p, size_t len) {
  const unsigned char *s = (const unsigned char *)p;
  size_t i = 0;
  while (i < len) {
    while (i + 8 <= len && (load64(s + i) & HIGH) == 0) i += 8;
    if (i >= len) break;
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    size_t n = proto_utf8_sequence_length(s + i, len - i);
    if (n == 0) return i;
    i += n;
  }
  return len;
}

bool proto_int64_parse_long(const char *p, size_t len, int64_t *out) {
  size_t i = 0;
  bool negative = false;
  if (len > 0 && p[0] == '-') {
    negative = true;
    i = 1;
  }
  uint64_t limit = negative ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
  uint64_t v = 0;
  for (; i < len; i++) {
    unsigned d = (unsigned)(unsigned char)p[i] - '0';
    if (d > 9) return false;
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  if (!negative) {
    *out = (int64_t)v;
  } else if (v == (uint64_t)INT64_MAX + 1u) {
    *out = INT64_MIN;
  } else {
    *out = -(int64_t)v;
  }
  return true;
}

/* "00".."99": two digits per division halves the divisions of a 10-digit token. */
static const char DIGIT_PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Exactly eight digits of v < 10^8: four independent pairs, so the divisions overlap
 * instead of waiting on one another. */
static void put_eight_digits(uint32_t v, char *out) {
  uint32_t high = v / 10000, low = v % 10000;
  memcpy(out, DIGIT_PAIRS + (high / 100) * 2, 2);
  memcpy(out + 2, DIGIT_PAIRS + (high % 100) * 2, 2);
  memcpy(out + 4, DIGIT_PAIRS + (low / 100) * 2, 2);
  memcpy(out + 6, DIGIT_PAIRS + (low % 100) * 2, 2);
}

/* v < 10^8 without leading zeros; returns its length. */
static size_t put_short(uint32_t v, char *out) {
  char tmp[8];
  size_t n = sizeof tmp;
  while (v >= 100) {
    unsigned pair = (v % 100) * 2;
    v /= 100;
    tmp[--n] = DIGIT_PAIRS[pair + 1];
    tmp[--n] = DIGIT_PAIRS[pair];
  }
  if (v >= 10) {
    tmp[--n] = DIGIT_PAIRS[v * 2 + 1];
    tmp[--n] = DIGIT_PAIRS[v * 2];
  } else {
    tmp[--n] = (char)('0' + v);
  }
  memcpy(out, tmp + n, sizeof tmp - n);
  return sizeof tmp - n;
}

size_t proto_int64_format(int64_t v, char *out) {
  size_t len = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  if (v < 0) out[len++] = '-';
  if (u < 100000000u) return len + put_short((uint32_t)u, out + len);
  uint64_t upper = u / 100000000u;
  uint32_t low8 = (uint32_t)(u % 100000000u);
  if (upper < 100000000u) {
    len += put_short((uint32_t)upper, out + len);
  } else {
    len += put_short((uint32_t)(upper / 100000000u), out + len);
    put_eight_digits((uint32_t)(upper % 100000000u), out + len);
    len += 8;
  }
  put_eight_digits(low8, out + len);
  return len + 8;
}

size_t proto_utf8_boundary(const char *p, size_t len) {
  const unsigned char *s = (const unsigned char *)p;
  size_t i = len;
  size_t back = 0;
  while (i > 0 && back < 4 && (s[i - 1] & 0xC0) == 0x80) {
    i--;
    back++;
  }
  if (i == 0) return len;
  unsigned char lead = s[i - 1];
  size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  size_t have = back + 1;
  if (lead >= 0xC0 && have < need) return i - 1;
  return len;
}

void proto_snippet(const char *p, size_t len, size_t max, char *out) {
  const unsigned char *s = (const unsigned char *)p;
  size_t i = 0, o = 0;
  while (i < len) {
    unsigned char c = s[i];
    size_t n = c >= 0x80 ? proto_utf8_sequence_length(s + i, len - i) : 1;
    /* Control and ill-formed bytes become '?' so a message stays printable UTF-8. */
    bool printable = n != 0 && c >= 0x20 && c != 0x7F;
    if (n == 0) n = 1;
    if (o + (printable ? n : 1) > max) break;
    if (printable) {
      memcpy(out + o, s + i, n);
      o += n;
    } else {
      out[o++] = '?';
    }
    i += n;
  }
  if (i < len) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
}

void proto_error_clear(proto_error_t *err) {
  if (err == NULL) return;
  err->code = PROTO_OK;
  err->kind = PROTO_CMD_NONE;
  err->field = NULL;
  err->offset = 0;
  err->message[0] = '\0';
}

proto_error_code_t proto_error_fill(proto_error_t *err, proto_error_code_t code,
                                    proto_command_kind_t kind, const char *field, size_t offset,
                                    const char *fmt, ...) {
  if (err == NULL) return code;
  err->code = code;
  err->kind = kind;
  err->field = field;
  err->offset = offset;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  if (n < 0) {
    err->message[0] = '\0';
  } else {
    size_t len = strlen(err->message);
    err->message[proto_utf8_boundary(err->message, len)] = '\0';
  }
  return code;
}

/* ---- public helpers ------------------------------------------------------------ */

proto_slice_t proto_slice_cstr(const char *s) {
  proto_slice_t slice = {s != NULL ? s : "", s != NULL ? strlen(s) : 0};
  return slice;
}

bool proto_slice_eq(proto_slice_t a, const char *s) {
  if (s == NULL) return a.len == 0;
  size_t n = strlen(s);
  return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

char *proto_slice_copy(proto_slice_t s, char *buf, size_t cap) {
  if (buf == NULL || cap == 0) return buf;
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  if (n > 0) memcpy(buf, s.ptr, n);
  buf[n] = '\0';
  return buf;
}

bool proto_line_is_blank(const char *line, size_t len) {
  /* The set Python's bytes.strip() removes, which is what Synapse tests with. */
  for (size_t i = 0; i < len; i++) {
    switch (line[i]) {
      case ' ':
      case '\t':
      case '\n':
      case '\r':
      case '\v':
      case '\f':
        continue;
      default:
        return false;
    }
  }
  return true;
}
