/* Private to rc_proto: helpers shared by the codec's source files. Not installed,
 * not included by anything outside proto/. Same rules as proto.h: no I/O, no
 * globals that change, no allocation. */
#ifndef PROTO_INTERNAL_H
#define PROTO_INTERNAL_H

#include "proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- bytes and UTF-8 (proto_bytes.c) ------------------------------------------ */

/* First space in [p, end), or NULL. Inline and vectorised: the fields it splits are
 * a few bytes long, where a call to memchr() costs more than the search. */
static inline const char *proto_find_space(const char *p, const char *end) {
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(' ');
  while (end - p >= 16) {
    unsigned mask = (unsigned)_mm_movemask_epi8(
        _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)p), space));
    if (mask != 0) return p + __builtin_ctz(mask);
    p += 16;
  }
#endif
  for (; p < end; p++) {
    if (*p == ' ') return p;
  }
  return NULL;
}

/* Length (2..4) of the well-formed UTF-8 sequence starting at p with `avail` bytes
 * available, or 0 when it is not well formed (overlong, surrogate, > U+10FFFF,
 * truncated, stray continuation byte). Only call it for p[0] >= 0x80. */
size_t proto_utf8_sequence_length(const unsigned char *p, size_t avail);

/* Offset of the first byte a line may not contain (NUL, CR, LF, or the first byte of
 * an ill-formed UTF-8 sequence), or len when there is none. */
size_t proto_bytes_first_bad(const char *p, size_t len);

/* proto_bytes_first_bad() for the parser's hot path: the part of a line before its
 * JSON value (or the whole of a short line) is a few dozen ASCII bytes, which one or
 * two 16-byte compares clear without a call; anything below 0x0E or non-ASCII goes to
 * the full check. */
static inline size_t proto_bytes_first_bad_inline(const char *p, size_t len) {
#if defined(__SSE2__)
  if (len >= 16) {
    const __m128i limit = _mm_set1_epi8(0x0E);
    size_t i = 0;
    for (;;) {
      size_t at = i + 16 <= len ? i : len - 16;
      __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + at));
      if (_mm_movemask_epi8(_mm_cmplt_epi8(v, limit)) != 0) break;
      i = at + 16;
      if (i >= len) return len;
    }
  }
#endif
  return proto_bytes_first_bad(p, len);
}

/* Offset of the first byte that starts an ill-formed UTF-8 sequence, or len. */
size_t proto_utf8_first_invalid(const char *p, size_t len);

/* proto_int64_parse() for fields of 19 digits or more (range checked per digit). */
bool proto_int64_parse_long(const char *p, size_t len, int64_t *out);

/* Parses a whole field as a decimal int64: optional '-', then 1..19 digits, no '+',
 * no spaces, no overflow. Inline: every RDATA, POSITION and PING has one or two, and
 * the call cost as much as the digits of a short token. */
static inline bool proto_int64_parse(const char *p, size_t len, int64_t *out) {
  size_t i = len > 0 && p[0] == '-' ? 1 : 0;
  if (i == len) return false;
  if (len - i > 18) return proto_int64_parse_long(p, len, out);
  /* Up to 18 digits cannot overflow: no range check per digit. */
  uint64_t v = 0;
  for (; i < len; i++) {
    unsigned d = (unsigned)(unsigned char)p[i] - '0';
    if (d > 9) return false;
    v = v * 10 + d;
  }
  *out = p[0] == '-' ? -(int64_t)v : (int64_t)v;
  return true;
}

/* Writes the decimal form of v at out (room for 20 bytes needed); returns its length. */
size_t proto_int64_format(int64_t v, char *out);

/* Copies at most `max` bytes of p into out as a NUL-terminated string, cut at a UTF-8
 * boundary, with "..." appended when cut. out must hold max + 4 bytes. */
void proto_snippet(const char *p, size_t len, size_t max, char *out);

/* Longest prefix of p[0..len) that does not end inside a UTF-8 sequence. */
size_t proto_utf8_boundary(const char *p, size_t len);

/* Resets *err (when non-NULL) to "no error", as every entry point does first. */
void proto_error_clear(proto_error_t *err);

/* Fills *err (when non-NULL) and returns code. The message is cut on a UTF-8
 * boundary so it can be echoed in an ERROR line. */
proto_error_code_t proto_error_fill(proto_error_t *err, proto_error_code_t code,
                                    proto_command_kind_t kind, const char *field, size_t offset,
                                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- JSON (proto_json.c) ---------------------------------------------------------- */

typedef struct proto_json_result {
  size_t bad_offset; /* first offending byte, when invalid */
  const char *why;   /* static reason, when invalid */
  char top;          /* first byte of the top-level value ('[', '{', '"', 't', '-', ...) */
  size_t top_items;  /* elements (array) or members (object) of the top-level value */
} proto_json_result_t;

/* The validator behind proto_json_valid(). In line mode CR and LF are not accepted as
 * whitespace, so a value valid in line mode contains no byte a line may not contain
 * (NUL, CR, LF, ill-formed UTF-8): the parser then needs no second pass over it. */
bool proto_json_check(const char *buf, size_t len, bool line_mode, proto_json_result_t *res);

/* How many of the eight bytes of w, in memory order, are decimal digits before the first
 * that is not (0..8). Both JSON scanners skip a number's digits eight at a time. */
static inline unsigned proto_leading_digits(uint64_t w) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  /* A byte is a digit when neither w - '0' nor w + (0x7F - '9') leaves 0..0x7F; borrows
   * and carries only run towards later bytes, so the first flagged byte is exact. */
  const uint64_t ones = 0x0101010101010101ULL;
  uint64_t bad = ((w - 0x30ULL * ones) | (w + 0x46ULL * ones) | w) & (0x80ULL * ones);
  return bad != 0 ? (unsigned)__builtin_ctzll(bad) / 8 : 8;
#else
  unsigned char b[8];
  memcpy(b, &w, sizeof b);
  unsigned n = 0;
  while (n < 8 && b[n] >= '0' && b[n] <= '9') n++;
  return n;
#endif
}

/* Length of the JSON escape at s[p] (a '\\' with s[p + 1] below len): 2, or 6 for
 * "\\u" and four hex digits (any, lone surrogates included: Python's decoder takes
 * them); 0 when it is not a valid escape. Shared by both JSON scanners. */
static inline size_t proto_json_escape_length(const unsigned char *s, size_t p, size_t len) {
  switch (s[p + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
      return 2;
    case 'u':
      for (size_t k = 2; k < 6; k++) {
        unsigned char c = p + k < len ? s[p + k] : 0;
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex) return 0;
      }
      return 6;
    default:
      return 0;
  }
}

/* Whether buf[0..len) is valid JSON in line mode: proto_json_check(buf, len, true,
 * NULL)'s verdict, faster, without the offset and reason of a refusal (the parser's
 * short way for RDATA rows, proto_json_line.c). */
bool proto_json_line_valid(const char *buf, size_t len);

/* ---- parsing (proto_parse.c) ------------------------------------------------------ */

/* Clears a command before parsing. A 232-byte memset becomes `rep stos`, whose start-up cost was a
 * third of the time spent on a short line; copying a static zero struct is a load and a store per
 * 16 bytes; storing one zero register is a store per 16 bytes. */
static inline void proto_command_zero(proto_command_t *out) {
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  char *o = (char *)out;
  size_t k = 0;
#pragma GCC unroll 16
  for (; k + 16 <= sizeof *out; k += 16) _mm_storeu_si128((__m128i *)(void *)(o + k), zero);
  if (k < sizeof *out) memset(o + k, 0, sizeof *out - k);
#else
  static const proto_command_t zero;
  memcpy(out, &zero, sizeof zero);
#endif
}

/* The complete parser behind proto_parse_line(): same contract. proto_parse_line()
 * answers the commonest lines itself and must return exactly what this returns
 * (result, *out, *err) for every input; tests compare the two. */
proto_error_code_t proto_parse_line_reference(proto_dialect_t dialect, proto_sender_t sender,
                                              const char *line, size_t len, proto_command_t *out,
                                              proto_error_t *err);

/* ---- grammar shared by parse, format and reject (proto_names.c) --------------------- */

/* Space-separated fields of a command's data in one dialect. The last field takes the
 * rest of the line (Python's str.split(" ", n - 1)). nfields == 0: the data is free
 * text (or ignored, for modern REPLICATE). Modern USER_SYNC has two forms; this is the
 * v1.92+ five-field one and the parser also accepts the four-field one. */
typedef struct proto_layout {
  unsigned nfields;
  const char *fields[5];
  const char *syntax; /* for messages, e.g. "<stream> <instance> <prev_token> <new_token>" */
} proto_layout_t;

/* The pre-v1.92 modern USER_SYNC: <instance_id> <user_id> <start|end> <last_sync_ms>. */
extern const proto_layout_t proto_layout_modern_user_sync_4;

/* Indexed by dialect then kind; a command not in the dialect has nfields 0 and a NULL
 * syntax. Use proto_layout_get(). */
extern const proto_layout_t proto_layouts[3][PROTO_CMD_COUNT];

/* Bit k set: kind k may be sent by that sender in that dialect (ANY: exists in it). */
extern const unsigned proto_direction_sets[3][4];

/* proto_command_allowed(), inline for the parser's hot path. */
static inline bool proto_kind_allowed(proto_dialect_t dialect, proto_command_kind_t kind,
                                      proto_sender_t sender) {
  if ((unsigned)dialect > 2u || (unsigned)sender > 3u || (unsigned)kind >= PROTO_CMD_COUNT) {
    return false;
  }
  return ((proto_direction_sets[dialect][sender] >> (unsigned)kind) & 1u) != 0;
}

static inline const proto_layout_t *proto_layout_get(proto_dialect_t dialect,
                                                     proto_command_kind_t kind) {
  if (!proto_kind_allowed(dialect, kind, PROTO_SENDER_ANY)) return NULL;
  return &proto_layouts[dialect][kind];
}

/* Which field of `kind`'s data holds byte `offset` of the data; "data" when unknown. */
const char *proto_layout_field_at(proto_dialect_t dialect, proto_command_kind_t kind,
                                  const char *data, size_t data_len, size_t offset);

#endif
