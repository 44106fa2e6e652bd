/* proto_parse_line(): the commonest lines a main sends (RDATA, POSITION, PING), when
 * they are well formed, take a short way here; every other line, and every line this
 * path is not sure of, goes to proto_parse_line_reference() (proto_parse.c), which
 * knows every command and every refusal. The short way only ever answers PROTO_OK,
 * and only where the reference would answer PROTO_OK with the same command, so the
 * result, *out and *err are the reference's for every input. test_proto
 * (test_parse_against_reference) and fuzz_proto compare the two.
 *
 * Why it is faster: the command word is matched with one 8-byte compare instead of a
 * lookup; one pass of 16-byte compares finds the spaces between the fields and checks
 * their bytes at the same time; the row goes to proto_json_line_valid(); and no error
 * context is set up. */
#include "proto_internal.h"

#include <string.h>

#if defined(__SSE2__)

static inline uint64_t load64(const char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

static inline uint32_t load32(const char *p) {
  uint32_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

/* The first eight bytes of a line starting with the word and its space, and the mask
 * of the first n (< 8) bytes of a little-endian word (SSE2 means x86). */
static const char HEAD_RDATA[8] = "RDATA ";
static const char HEAD_PING[8] = "PING ";
static const char HEAD_POSITION[8] = "POSITION"; /* and line[8] == ' ' */
#define MASK_BYTES(n) ((1ULL << ((n)*8)) - 1)

/* Stores the spaces of one window (bits of `spaces` count from `at`) in sp until
 * `need` are found: 1 when they are and no byte before the last is bad, 0 when a bad
 * byte is seen first, -1 when the window holds too few. */
static inline __attribute__((always_inline)) int take_spaces(const char *at, uint32_t spaces,
                                                             uint32_t bad, unsigned need,
                                                             unsigned *found, const char **sp) {
  while (spaces != 0) {
    unsigned bit = (unsigned)__builtin_ctz(spaces);
    sp[(*found)++] = at + bit;
    if (*found == need) return (bad & ((1u << bit) - 1u)) == 0;
    spaces &= spaces - 1;
  }
  return bad != 0 ? 0 : -1;
}

/* Finds the first `need` spaces (1..3) in [at, end), storing them in sp, when every
 * byte before the last of them may appear in a line and is ASCII (none below 0x0E:
 * NUL, CR, LF; a tab only costs the long way). false otherwise. The line holds at
 * least 16 bytes before end: the last window overlaps the one before instead of
 * reading past the end. The fields before a row usually fit in 32 bytes, which two
 * loads and one walk over their spaces settle. */
static inline __attribute__((always_inline)) bool find_spaces(const char *at, const char *end,
                                                              unsigned need, const char **sp) {
  const __m128i space = _mm_set1_epi8(' ');
  const __m128i limit = _mm_set1_epi8(0x0E);
  unsigned found = 0;
  if (end - at >= 32) {
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)at);
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(at + 16));
    uint32_t spaces = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a, space)) |
                      (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(b, space)) << 16;
    uint32_t bad = (uint32_t)_mm_movemask_epi8(_mm_cmplt_epi8(a, limit)) |
                   (uint32_t)_mm_movemask_epi8(_mm_cmplt_epi8(b, limit)) << 16;
    int done = take_spaces(at, spaces, bad, need, &found, sp);
    if (done >= 0) return done == 1;
    at += 32;
  }
  while (at < end) {
    const char *window = end - at >= 16 ? at : end - 16;
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)window);
    unsigned shift = (unsigned)(at - window);
    unsigned spaces = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, space)) >> shift;
    unsigned bad = (unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(v, limit)) >> shift;
    int done = take_spaces(at, spaces, bad, need, &found, sp);
    if (done >= 0) return done == 1;
    at = window + 16;
  }
  return false;
}

/* Whether every byte of p[0..len) (len >= 16) is ASCII and none is below 0x0E. */
static inline bool all_plain(const char *p, size_t len) {
  const __m128i limit = _mm_set1_epi8(0x0E);
  __m128i bad =
      _mm_cmplt_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + len - 16)), limit);
  for (size_t i = 0; i + 16 < len; i += 16)
    bad = _mm_or_si128(
        bad, _mm_cmplt_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + i)), limit));
  return _mm_movemask_epi8(bad) == 0;
}

static inline proto_slice_t slice(const char *from, const char *to) {
  proto_slice_t s = {from, (size_t)(to - from)};
  return s;
}

/* Clears *out and fills what every command has: kind, the word and the data. */
static inline void start_command(proto_command_t *out, proto_command_kind_t kind, const char *line,
                                 size_t name_len, const char *end) {
  proto_command_zero(out);
  out->kind = kind;
  out->name = slice(line, line + name_len);
  out->data = slice(line + name_len + 1, end);
}

/* RDATA <stream> [<instance>] <token|batch> <row>. */
static inline bool parse_rdata(proto_dialect_t dialect, const char *line, const char *end,
                               proto_command_t *out) {
  const char *data = line + 6;
  const char *sp[3];
  const unsigned spaces = dialect == PROTO_DIALECT_MODERN ? 3 : 2;
  if (!find_spaces(data, end, spaces, sp)) return false;
  proto_slice_t stream = slice(data, sp[0]);
  proto_slice_t instance = {NULL, 0};
  if (stream.len == 0) return false;
  if (spaces == 3) {
    instance = slice(sp[0] + 1, sp[1]);
    if (instance.len == 0) return false;
  }
  proto_slice_t token = slice(sp[spaces - 2] + 1, sp[spaces - 1]);
  proto_slice_t row = slice(sp[spaces - 1] + 1, end);
  bool batch = false;
  int64_t value = 0;
  if (token.len == 5 && load32(token.ptr) == load32("batch") && token.ptr[4] == 'h') {
    batch = true;
  } else if (!proto_int64_parse(token.ptr, token.len, &value)) {
    return false;
  }
  if (!proto_json_line_valid(row.ptr, row.len)) return false;
  /* Field by field: a compound literal was built on the stack and copied. */
  start_command(out, PROTO_CMD_RDATA, line, 5, end);
  out->stream = stream;
  out->instance = instance;
  out->row = row;
  out->token_is_batch = batch;
  out->token = value;
  return true;
}

/* POSITION <stream> <token> (2018) or <stream> <instance> <prev> <new> (modern). */
static inline bool parse_position(proto_dialect_t dialect, const char *line, const char *end,
                                  proto_command_t *out) {
  const char *data = line + 9;
  const char *sp[3];
  if (dialect == PROTO_DIALECT_2018) {
    int64_t token;
    if (!find_spaces(data, end, 1, sp) || sp[0] == data ||
        !proto_int64_parse(sp[0] + 1, (size_t)(end - sp[0] - 1), &token))
      return false;
    start_command(out, PROTO_CMD_POSITION, line, 8, end);
    out->stream = slice(data, sp[0]);
    out->token = token;
    return true;
  }
  int64_t prev, next;
  /* The integers admit only digits and '-': the line's bytes are all checked then. */
  if (!find_spaces(data, end, 3, sp) || sp[0] == data || sp[1] == sp[0] + 1 ||
      !proto_int64_parse(sp[1] + 1, (size_t)(sp[2] - sp[1] - 1), &prev) ||
      !proto_int64_parse(sp[2] + 1, (size_t)(end - sp[2] - 1), &next))
    return false;
  start_command(out, PROTO_CMD_POSITION, line, 8, end);
  out->stream = slice(data, sp[0]);
  out->instance = slice(sp[0] + 1, sp[1]);
  out->prev_token = prev;
  out->new_token = next;
  return true;
}

/* The short way; false: ask the reference. len >= 16, dialect and sender are valid. */
static bool parse_common(proto_dialect_t dialect, proto_sender_t sender, const char *line,
                         size_t len, proto_command_t *out) {
  const uint64_t head = load64(line);
  const char *end = line + len;
  const unsigned allowed = proto_direction_sets[dialect][sender];
  if ((head & MASK_BYTES(6)) == load64(HEAD_RDATA)) {
    return (allowed & (1u << PROTO_CMD_RDATA)) != 0 && parse_rdata(dialect, line, end, out);
  }
  if (head == load64(HEAD_POSITION) && line[8] == ' ') {
    return (allowed & (1u << PROTO_CMD_POSITION)) != 0 && parse_position(dialect, line, end, out);
  }
  if ((head & MASK_BYTES(5)) == load64(HEAD_PING)) {
    /* Free text: every byte of the line is checked here. */
    if ((allowed & (1u << PROTO_CMD_PING)) == 0 || !all_plain(line, len)) return false;
    start_command(out, PROTO_CMD_PING, line, 4, end);
    out->text = out->data;
    return true;
  }
  return false;
}

#endif

proto_error_code_t proto_parse_line(proto_dialect_t dialect, proto_sender_t sender,
                                    const char *line, size_t len, proto_command_t *out,
                                    proto_error_t *err) {
#if defined(__SSE2__)
  /* Lines shorter than 16 bytes are rare in bulk and would need other loads. */
  if (line != NULL && len >= 16 && len <= PROTO_MAX_LINE &&
      (dialect == PROTO_DIALECT_2018 || dialect == PROTO_DIALECT_MODERN) &&
      (sender == PROTO_SENDER_SERVER || sender == PROTO_SENDER_CLIENT ||
       sender == PROTO_SENDER_ANY)) {
    proto_command_t scratch;
    if (parse_common(dialect, sender, line, len, out != NULL ? out : &scratch)) {
      proto_error_clear(err);
      return PROTO_OK;
    }
  }
#endif
  return proto_parse_line_reference(dialect, sender, line, len, out, err);
}
