/* Unit tests of rc_proto, the replication protocol codec.
 *
 * Table-driven: the cases are in test_proto_cases.h; the real Synapse transcripts and
 * the spec's fenced examples are read at test time from REPLCHECK_SHARED_DIR. Every
 * check that fails prints its id, Requirement, Source, Expected and Actual, and a test
 * runs all its rows before failing so one run shows every broken row. */
#include <check.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_reference.h"
#include "proto.h"
#include "test_proto_cases.h"
#include "test_support.h"

/* ---- reporting ------------------------------------------------------------------------ */

typedef struct tally {
  int checks;
  int failures;
} tally_t;

typedef struct meta {
  const char *id;
  const char *requirement;
  const char *source;
} meta_t;

/* Printable form of p[0..n) for messages: C escapes for control bytes and bytes that
 * are not valid UTF-8, cut at 300 bytes. Rotates over a few static buffers so one
 * message may show several values. */
static const char *show(const char *p, size_t n) {
  static char bufs[6][400];
  static int next;
  char *out = bufs[next];
  next = (next + 1) % 6;
  size_t o = 0;
  if (p == NULL) return n == 0 ? "" : "(null)";
  for (size_t i = 0; i < n && o < 300; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '\t') {
      o += (size_t)snprintf(out + o, 400 - o, "\\t");
    } else if (c == '\r') {
      o += (size_t)snprintf(out + o, 400 - o, "\\r");
    } else if (c == '\n') {
      o += (size_t)snprintf(out + o, 400 - o, "\\n");
    } else if (c < 0x20 || c == 0x7F) {
      o += (size_t)snprintf(out + o, 400 - o, "\\x%02x", c);
    } else {
      out[o++] = (char)c;
    }
  }
  if (o >= 300 && n > 0) o += (size_t)snprintf(out + o, 400 - o, "...");
  out[o] = '\0';
  return out;
}

static const char *show_cstr(const char *s) {
  return s == NULL ? "(null)" : show(s, strlen(s));
}

static bool expect(tally_t *t, bool ok, const meta_t *m, const char *what, const char *expected,
                   const char *actual) {
  t->checks++;
  if (ok) return true;
  t->failures++;
  fprintf(stderr,
          "FAIL %s: %s\n  Requirement: %s\n  Source:      %s\n  Expected:    %s\n"
          "  Actual:      %s\n",
          m->id, what, m->requirement, m->source, expected, actual);
  return false;
}

static const char *code_name(proto_error_code_t code) {
  switch (code) {
    case PROTO_OK:
      return "PROTO_OK";
    case PROTO_ERR_BLANK:
      return "PROTO_ERR_BLANK";
    case PROTO_ERR_TOO_LONG:
      return "PROTO_ERR_TOO_LONG";
    case PROTO_ERR_BAD_BYTES:
      return "PROTO_ERR_BAD_BYTES";
    case PROTO_ERR_UNKNOWN_COMMAND:
      return "PROTO_ERR_UNKNOWN_COMMAND";
    case PROTO_ERR_WRONG_DIRECTION:
      return "PROTO_ERR_WRONG_DIRECTION";
    case PROTO_ERR_BAD_FIELD:
      return "PROTO_ERR_BAD_FIELD";
  }
  return "?";
}

static bool expect_code(tally_t *t, const meta_t *m, proto_error_code_t got,
                        proto_error_code_t want, const proto_error_t *err) {
  char actual[400];
  snprintf(actual, sizeof actual, "%s (%s)", code_name(got),
           err != NULL ? show_cstr(err->message) : "");
  return expect(t, got == want, m, "error code", code_name(want), actual);
}

static bool expect_str(tally_t *t, const meta_t *m, const char *what, const char *got,
                       size_t got_len, const char *want) {
  bool ok = got != NULL && strlen(want) == got_len && memcmp(got, want, got_len) == 0;
  return expect(t, ok, m, what, show_cstr(want), show(got, got_len));
}

static void finish(const tally_t *t, const char *name) {
  printf("%s: %d checks, %d failed\n", name, t->checks, t->failures);
  ck_assert_msg(t->checks > 0, "%s: no check ran", name);
  ck_assert_msg(t->failures == 0, "%s: %d of %d checks failed (Requirement/Expected/Actual above)",
                name, t->failures, t->checks);
}

/* ---- describing a parsed command ------------------------------------------------------ */

typedef struct sbuf {
  char *p;
  size_t cap;
  size_t len;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
  if (b->len >= b->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n > 0) b->len += (size_t)n < b->cap - b->len ? (size_t)n : b->cap - b->len - 1;
}

static void sb_slice(sbuf_t *b, const char *label, proto_slice_t s) {
  sb_printf(b, " %s='%s'", label, show(s.ptr, s.len));
}

/* One line naming the fields meaningful for the command and dialect (proto.h table). */
static void describe(proto_dialect_t d, const proto_command_t *c, char *out, size_t cap) {
  sbuf_t b = {out, cap, 0};
  out[0] = '\0';
  bool modern = d == PROTO_DIALECT_MODERN;
  sb_printf(&b, "%s", proto_command_name(c->kind));
  switch (c->kind) {
    case PROTO_CMD_RDATA:
      sb_slice(&b, "stream", c->stream);
      if (modern) sb_slice(&b, "instance", c->instance);
      if (c->token_is_batch) {
        sb_printf(&b, " token=batch");
      } else {
        sb_printf(&b, " token=%lld", (long long)c->token);
      }
      sb_slice(&b, "row", c->row);
      break;
    case PROTO_CMD_POSITION:
      sb_slice(&b, "stream", c->stream);
      if (modern) {
        sb_slice(&b, "instance", c->instance);
        sb_printf(&b, " prev=%lld new=%lld", (long long)c->prev_token, (long long)c->new_token);
      } else {
        sb_printf(&b, " token=%lld", (long long)c->token);
      }
      break;
    case PROTO_CMD_REPLICATE:
      if (modern) {
        sb_printf(&b, " trailing_space=%d", c->trailing_space);
      } else {
        sb_slice(&b, "stream", c->stream);
        if (c->token_is_now) {
          sb_printf(&b, " token=NOW");
        } else {
          sb_printf(&b, " token=%lld", (long long)c->token);
        }
      }
      break;
    case PROTO_CMD_USER_SYNC:
      if (modern) sb_slice(&b, "instance", c->instance);
      sb_slice(&b, "user", c->user_id);
      if (modern && c->has_device_id) sb_slice(&b, "device", c->device_id);
      sb_printf(&b, " state=%s ms=%lld", c->sync_start ? "start" : "end",
                (long long)c->last_sync_ms);
      break;
    case PROTO_CMD_CLEAR_USER_SYNC:
      sb_slice(&b, "instance", c->instance);
      break;
    case PROTO_CMD_FEDERATION_ACK:
      if (modern) sb_slice(&b, "instance", c->instance);
      sb_printf(&b, " token=%lld", (long long)c->token);
      break;
    case PROTO_CMD_REMOVE_PUSHER:
      sb_slice(&b, "app", c->app_id);
      sb_slice(&b, "key", c->push_key);
      sb_slice(&b, "user", c->user_id);
      break;
    case PROTO_CMD_INVALIDATE_CACHE:
      sb_slice(&b, "cache_func", c->cache_func);
      sb_slice(&b, "keys", c->row);
      break;
    case PROTO_CMD_USER_IP:
      sb_slice(&b, "user", c->user_id);
      sb_slice(&b, "row", c->row);
      break;
    case PROTO_CMD_LOCK_RELEASED:
      sb_slice(&b, "row", c->row);
      break;
    default:
      sb_slice(&b, "text", c->text);
      sb_printf(&b, " trailing_space=%d", c->trailing_space);
      break;
  }
}

/* Parses `line`, checks it is accepted as `kind`, formats it back and checks the result
 * is `line` byte for byte (or, when exact is false, that it parses to the same fields). */
static void check_round_trip(tally_t *t, const meta_t *m, proto_dialect_t dialect,
                             proto_sender_t sender, const char *line, size_t len,
                             proto_command_kind_t kind, const char *dump, bool exact) {
  proto_command_t cmd;
  proto_error_t err;
  proto_error_code_t rc = proto_parse_line(dialect, sender, line, len, &cmd, &err);
  if (!expect_code(t, m, rc, PROTO_OK, &err)) return;
  if (kind != PROTO_CMD_NONE) {
    expect(t, cmd.kind == kind, m, "command kind", proto_command_name(kind),
           proto_command_name(cmd.kind));
  }
  char first[1024];
  describe(dialect, &cmd, first, sizeof first);
  if (dump != NULL) expect(t, strcmp(first, dump) == 0, m, "parsed fields", dump, first);

  static char buf[PROTO_MAX_LINE + 1];
  int n = proto_format_command(dialect, &cmd, buf, sizeof buf, &err);
  if (!expect(t, n >= 0, m, "format succeeds", "a line", show_cstr(err.message))) return;
  if (exact) {
    expect(t, (size_t)n == len && memcmp(buf, line, len) == 0, m, "format(parse(line)) == line",
           show(line, len), show(buf, (size_t)n));
  }
  proto_command_t again;
  rc = proto_parse_line(dialect, sender, buf, (size_t)n, &again, &err);
  if (!expect_code(t, m, rc, PROTO_OK, &err)) return;
  char second[1024];
  describe(dialect, &again, second, sizeof second);
  expect(t, strcmp(first, second) == 0, m, "parse(format(cmd)) has the same fields", first, second);
}

/* ---- spec examples ---------------------------------------------------------------------- */

START_TEST(test_spec_examples) {
  tally_t t = {0, 0};
  for (size_t i = 0; i < sizeof example_cases / sizeof example_cases[0]; i++) {
    const example_case_t *c = &example_cases[i];
    meta_t m = {c->id, EXAMPLES_REQ, c->source};
    check_round_trip(&t, &m, c->dialect, c->sender, c->line, strlen(c->line), c->kind, NULL, true);
  }

  /* Every line of a fenced example block in the spec must be in the table above, with
   * its direction, so a new example in the spec cannot go untested. */
  char *path = test_path(test_env("REPLCHECK_SHARED_DIR"), "spec/replication-protocol.md");
  size_t size = 0;
  char *spec = test_read_file(path, &size);
  ck_assert_msg(spec != NULL, "cannot read %s", path);
  bool fenced = false;
  int found = 0, lineno = 0;
  for (char *p = spec; p < spec + size;) {
    char *eol = memchr(p, '\n', (size_t)(spec + size - p));
    size_t n = eol != NULL ? (size_t)(eol - p) : (size_t)(spec + size - p);
    lineno++;
    if (n >= 3 && memcmp(p, "```", 3) == 0) {
      fenced = !fenced;
    } else if (fenced && n >= 2 && (p[0] == '>' || p[0] == '<') && p[1] == ' ') {
      proto_sender_t sender = p[0] == '>' ? SRV : CLI;
      bool listed = false;
      for (size_t i = 0; i < sizeof example_cases / sizeof example_cases[0] && !listed; i++) {
        listed = example_cases[i].sender == sender && strlen(example_cases[i].line) == n - 2 &&
                 memcmp(example_cases[i].line, p + 2, n - 2) == 0;
      }
      char id[64];
      snprintf(id, sizeof id, "EX-spec-line-%d", lineno);
      meta_t m = {id, EXAMPLES_REQ, "P (fenced example blocks)"};
      expect(&t, listed, &m, "spec example is in example_cases", show(p, n), "missing");
      found++;
    }
    p += n + 1;
  }
  ck_assert_msg(found >= 20, "only %d example lines found in %s", found, path);
  free(spec);
  free(path);
  finish(&t, "spec examples");
}
END_TEST

START_TEST(test_fields) {
  tally_t t = {0, 0};
  for (size_t i = 0; i < sizeof field_cases / sizeof field_cases[0]; i++) {
    const field_case_t *c = &field_cases[i];
    meta_t m = {c->id, FIELDS_REQ, "P §2.2; U commands.py from_line (split(\" \", n))"};
    check_round_trip(&t, &m, c->dialect, c->sender, c->line.p, c->line.n, PROTO_CMD_NONE, c->dump,
                     c->round_trip);
  }
  /* Slices point into the caller's line. */
  const char *line = "RDATA events master 12 [1]";
  proto_command_t cmd;
  ck_assert_int_eq(proto_parse_line(DMO, SRV, line, strlen(line), &cmd, NULL), PROTO_OK);
  ck_assert_ptr_eq(cmd.name.ptr, line);
  ck_assert_uint_eq(cmd.name.len, 5);
  ck_assert_ptr_eq(cmd.data.ptr, line + 6);
  ck_assert_ptr_eq(cmd.row.ptr, line + 23);
  ck_assert(!cmd.trailing_space);
  finish(&t, "fields");
}
END_TEST

/* ---- real Synapse transcripts --------------------------------------------------------------- */

typedef struct wire_line {
  proto_sender_t sender;
  char *text;
  size_t len;
  int lineno;
} wire_line_t;

typedef struct transcript {
  wire_line_t *lines;
  size_t count;
} transcript_t;

static const char *skip_token(const char *p, const char *end) {
  while (p < end && *p == ' ') p++;
  while (p < end && *p != ' ') p++;
  return p;
}

/* Transcript rows: "<timestamp> + <offset> <conn> <dir> <line>"; dir W>M is the worker
 * (client), M>W the main (server); '---' rows and "-- EOF" markers are the proxy's. The
 * '+' may also be glued to the offset. */
static transcript_t load_transcript(const char *rel) {
  transcript_t tr = {NULL, 0};
  char *path = test_path(test_env("REPLCHECK_SHARED_DIR"), rel);
  size_t size = 0;
  char *data = test_read_file(path, &size);
  ck_assert_msg(data != NULL, "cannot read %s", path);
  tr.lines = calloc(size / 8 + 1, sizeof *tr.lines);
  ck_assert_ptr_nonnull(tr.lines);
  int lineno = 0;
  for (const char *p = data; p < data + size;) {
    const char *eol = memchr(p, '\n', (size_t)(data + size - p));
    const char *end = eol != NULL ? eol : data + size;
    lineno++;
    const char *q = skip_token(p, end); /* timestamp */
    while (q < end && *q == ' ') q++;
    if (q < end && *q == '+' && q + 1 < end && q[1] == ' ') q++; /* lone '+' */
    q = skip_token(q, end);                                      /* offset */
    q = skip_token(q, end);                                      /* connection */
    while (q < end && *q == ' ') q++;
    const char *dir = q;
    while (q < end && *q != ' ') q++;
    size_t dir_len = (size_t)(q - dir);
    proto_sender_t sender = 0;
    if (dir_len == 3 && memcmp(dir, "W>M", 3) == 0) sender = CLI;
    if (dir_len == 3 && memcmp(dir, "M>W", 3) == 0) sender = SRV;
    if (sender != 0 && q < end) {
      const char *text = q + 1;
      size_t len = (size_t)(end - text);
      if (!(len >= 3 && memcmp(text, "-- ", 3) == 0)) {
        wire_line_t *w = &tr.lines[tr.count++];
        w->sender = sender;
        w->text = malloc(len + 1);
        ck_assert_ptr_nonnull(w->text);
        memcpy(w->text, text, len);
        w->text[len] = '\0';
        w->len = len;
        w->lineno = lineno;
      }
    }
    p = end + 1;
  }
  free(data);
  free(path);
  return tr;
}

static void free_transcript(transcript_t *tr) {
  for (size_t i = 0; i < tr->count; i++) free(tr->lines[i].text);
  free(tr->lines);
}

static void check_real_pair(const char *rel, proto_dialect_t dialect, const char *requirement) {
  transcript_t tr = load_transcript(rel);
  tally_t t = {0, 0};
  size_t from_client = 0, from_server = 0;
  for (size_t i = 0; i < tr.count; i++) {
    const wire_line_t *w = &tr.lines[i];
    char id[128];
    snprintf(id, sizeof id, "%s:%d", rel, w->lineno);
    char source[160];
    snprintf(source, sizeof source, "T %s", rel);
    meta_t m = {id, requirement, source};
    check_round_trip(&t, &m, dialect, w->sender, w->text, w->len, PROTO_CMD_NONE, NULL, true);
    if (w->sender == CLI) from_client++;
    if (w->sender == SRV) from_server++;
  }
  ck_assert_msg(from_client > 0 && from_server > 0,
                "%s: expected lines both ways, got %zu from the worker and %zu from the main", rel,
                from_client, from_server);
  free_transcript(&tr);
  finish(&t, rel);
}

START_TEST(test_real_pair_166) {
  check_real_pair("reference/synapse-1.66/real-pair.txt", DMO,
                  "every line a real Synapse 1.66 worker and main exchanged parses (modern) "
                  "from its sender and round-trips byte for byte");
}
END_TEST

START_TEST(test_real_pair_112) {
  check_real_pair("reference/synapse-1.12/real-pair.txt", D18,
                  "every line a real Synapse 1.12 worker and main exchanged parses (2018) from "
                  "its sender and round-trips byte for byte");
}
END_TEST

/* ---- framing ------------------------------------------------------------------------------ */

#define FRAME_REQ \
  "lines end at LF only (CR is data); at most 16384 bytes before the LF, also unterminated"
#define FRAME_SRC "P §1.1; Twisted basic.py LineOnlyReceiver; R FR-01, FR-03, FR-04"

START_TEST(test_framing_limits) {
  tally_t t = {0, 0};
  size_t big = PROTO_MAX_LINE + 64;
  char *buf = malloc(big + 2);
  ck_assert_ptr_nonnull(buf);
  size_t line_len = 99, consumed = 99;
  char expected[64], actual[64];

  struct {
    const char *id;
    size_t fill;  /* bytes of 'a' */
    bool with_lf; /* followed by LF */
    proto_frame_status_t status;
    size_t line_len, consumed;
  } rows[] = {
      {"FR-L01", PROTO_MAX_LINE, true, PROTO_FRAME_LINE, PROTO_MAX_LINE, PROTO_MAX_LINE + 1},
      {"FR-L02", PROTO_MAX_LINE + 1, true, PROTO_FRAME_TOO_LONG, 0, 0},
      {"FR-L03", PROTO_MAX_LINE, false, PROTO_FRAME_NEED_MORE, 0, 0},
      {"FR-L04", PROTO_MAX_LINE + 1, false, PROTO_FRAME_TOO_LONG, 0, 0},
      {"FR-L05", PROTO_MAX_LINE + 60, false, PROTO_FRAME_TOO_LONG, 0, 0},
      {"FR-L06", 0, true, PROTO_FRAME_LINE, 0, 1},
      {"FR-L07", 5, false, PROTO_FRAME_NEED_MORE, 0, 0},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    meta_t m = {rows[i].id, FRAME_REQ, FRAME_SRC};
    memset(buf, 'a', rows[i].fill);
    size_t len = rows[i].fill;
    if (rows[i].with_lf) buf[len++] = '\n';
    proto_frame_status_t st = proto_frame_next(buf, len, &line_len, &consumed);
    snprintf(expected, sizeof expected, "status %d, line %zu, consumed %zu", rows[i].status,
             rows[i].line_len, rows[i].consumed);
    snprintf(actual, sizeof actual, "status %d, line %zu, consumed %zu", st, line_len, consumed);
    expect(&t, st == rows[i].status && line_len == rows[i].line_len && consumed == rows[i].consumed,
           &m, "frame", expected, actual);
  }

  /* CR is data: "PING 1\r\n" is the 7-byte line "PING 1\r", which the parser refuses. */
  meta_t m = {"FR-CR", FRAME_REQ, FRAME_SRC};
  const char *crlf = "PING 1\r\nPING 2\n";
  proto_frame_status_t st = proto_frame_next(crlf, strlen(crlf), &line_len, &consumed);
  expect(&t, st == PROTO_FRAME_LINE && line_len == 7 && consumed == 8, &m, "CR kept in the line",
         "line 7, consumed 8", show(crlf, line_len));
  proto_error_t err;
  expect_code(&t, &m, proto_parse_line(DMO, SRV, crlf, line_len, NULL, &err), PROTO_ERR_BAD_BYTES,
              &err);

  /* Complete lines before an over-long tail are still delivered, as Twisted does. */
  meta_t m2 = {"FR-TAIL", FRAME_REQ, FRAME_SRC};
  memcpy(buf, "PING 1\n", 7);
  memset(buf + 7, 'b', PROTO_MAX_LINE + 1);
  st = proto_frame_next(buf, 7 + PROTO_MAX_LINE + 1, &line_len, &consumed);
  expect(&t, st == PROTO_FRAME_LINE && line_len == 6, &m2, "first line", "PING 1",
         show(buf, line_len));
  st = proto_frame_next(buf + consumed, PROTO_MAX_LINE + 1, &line_len, &consumed);
  expect(&t, st == PROTO_FRAME_TOO_LONG, &m2, "then the tail", "TOO_LONG", "not TOO_LONG");

  meta_t m3 = {"FR-NULL", FRAME_REQ, FRAME_SRC};
  expect(&t, proto_frame_next(NULL, 0, NULL, NULL) == PROTO_FRAME_NEED_MORE, &m3, "empty buffer",
         "NEED_MORE", "other");
  free(buf);
  finish(&t, "framing limits");
}
END_TEST

/* Feeds a byte stream to a receive buffer in chunks and collects the lines. */
static void check_chunked(tally_t *t, const meta_t *m, const char *stream, size_t size,
                          const transcript_t *want, uint64_t seed, size_t max_chunk) {
  size_t cap = PROTO_MAX_LINE * 2;
  char *rx = malloc(cap);
  ck_assert_ptr_nonnull(rx);
  size_t have = 0, fed = 0, next = 0;
  uint64_t x = seed;
  while (fed < size) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t chunk = 1 + (size_t)(x % max_chunk);
    if (chunk > size - fed) chunk = size - fed;
    memcpy(rx + have, stream + fed, chunk);
    have += chunk;
    fed += chunk;
    size_t start = 0, line_len, consumed;
    for (;;) {
      proto_frame_status_t st = proto_frame_next(rx + start, have - start, &line_len, &consumed);
      if (st == PROTO_FRAME_NEED_MORE) break;
      if (!expect(t, st == PROTO_FRAME_LINE, m, "frame status", "LINE", "TOO_LONG")) break;
      bool ok = next < want->count && want->lines[next].len == line_len &&
                memcmp(want->lines[next].text, rx + start, line_len) == 0;
      expect(t, ok, m, "line in order", next < want->count ? show_cstr(want->lines[next].text) : "",
             show(rx + start, line_len));
      next++;
      start += consumed;
    }
    memmove(rx, rx + start, have - start);
    have -= start;
  }
  char expected[32], actual[32];
  snprintf(expected, sizeof expected, "%zu lines, 0 left", want->count);
  snprintf(actual, sizeof actual, "%zu lines, %zu left", next, have);
  expect(t, next == want->count && have == 0, m, "all lines delivered", expected, actual);
  free(rx);
}

START_TEST(test_framing_chunked) {
  tally_t t = {0, 0};
  transcript_t tr = load_transcript("reference/synapse-1.66/real-pair.txt");
  transcript_t tr12 = load_transcript("reference/synapse-1.12/real-pair.txt");
  /* Both transcripts plus lines with multi-byte characters to split, and a CR. */
  static const char *extra[] = {"SERVER \xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9", "PING 1\r",
                                "RDATA typing master 3 [\"\xc3\xa9\xc3\xa9\xc3\xa9\"]", ""};
  transcript_t all = {calloc(tr.count + tr12.count + 4, sizeof(wire_line_t)), 0};
  ck_assert_ptr_nonnull(all.lines);
  size_t size = 0;
  for (size_t i = 0; i < tr.count; i++) all.lines[all.count++] = tr.lines[i];
  for (size_t i = 0; i < tr12.count; i++) all.lines[all.count++] = tr12.lines[i];
  for (size_t i = 0; i < 4; i++) {
    all.lines[all.count].text = (char *)extra[i];
    all.lines[all.count++].len = strlen(extra[i]);
  }
  for (size_t i = 0; i < all.count; i++) size += all.lines[i].len + 1;
  char *stream = malloc(size);
  ck_assert_ptr_nonnull(stream);
  size_t o = 0;
  for (size_t i = 0; i < all.count; i++) {
    memcpy(stream + o, all.lines[i].text, all.lines[i].len);
    o += all.lines[i].len;
    stream[o++] = '\n';
  }
  meta_t m1 = {"FR-C01", "lines are delimited by LF whatever the segmentation (1-byte writes)",
               "R FR-01"};
  check_chunked(&t, &m1, stream, size, &all, 1, 1);
  meta_t m2 = {"FR-C02", "lines are delimited by LF whatever the segmentation (random writes)",
               "R FR-01"};
  for (uint64_t seed = 1; seed <= 8; seed++) check_chunked(&t, &m2, stream, size, &all, seed, 97);
  meta_t m3 = {"FR-C03", "lines are delimited by LF whatever the segmentation (one write)",
               "R FR-01"};
  check_chunked(&t, &m3, stream, size, &all, 3, size);
  free(stream);
  free(all.lines);
  free_transcript(&tr);
  free_transcript(&tr12);
  finish(&t, "framing chunked");
}
END_TEST

/* FR-03: a valid line of exactly 16384 bytes is accepted; one byte more is refused. */
START_TEST(test_parse_length_limit) {
  tally_t t = {0, 0};
  char *line = malloc(PROTO_MAX_LINE + 2);
  ck_assert_ptr_nonnull(line);
  const char *head = "RDATA caches master 9 [\"get_user_by_id\",[\"";
  const char *tail = "\"],1]";
  size_t hl = strlen(head), tl = strlen(tail);
  for (size_t extra = 0; extra <= 1; extra++) {
    size_t len = PROTO_MAX_LINE + extra;
    memcpy(line, head, hl);
    memset(line + hl, 'x', len - hl - tl);
    memcpy(line + len - tl, tail, tl);
    meta_t m = {extra == 0 ? "LL-01" : "LL-02",
                "inbound lines of up to 16384 bytes are accepted, longer ones refused",
                "R FR-03, FR-04; P §1.1"};
    proto_error_t err;
    proto_error_code_t rc = proto_parse_line(DMO, SRV, line, len, NULL, &err);
    expect_code(&t, &m, rc, extra == 0 ? PROTO_OK : PROTO_ERR_TOO_LONG, &err);
    if (extra == 0) {
      check_round_trip(&t, &m, DMO, SRV, line, len, PROTO_CMD_RDATA, NULL, true);
    } else {
      char text[64];
      size_t n = proto_rejection_text(DMO, line, len, &err, text, sizeof text);
      expect_str(&t, &m, "ERROR text", text, n, "Line length exceeded");
      n = proto_rejection_text(D18, line, len, &err, text, sizeof text);
      expect_str(&t, &m, "ERROR text (2018)", text, n, "Line length exceeded");
    }
  }
  free(line);
  finish(&t, "length limit");
}
END_TEST

/* ---- chunk boundaries of the vectorised scanners ------------------------------------------ */

#define EDGE_REQ "scanners that read 8 or 16 bytes at a time find every byte at every offset"

START_TEST(test_scan_boundaries) {
  tally_t t = {0, 0};
  static char line[160];
  static const unsigned char bad_bytes[] = {0x00, '\r', '\n', 0xFF, 0x80};
  char want[64], got[64];
  /* A forbidden byte at each offset of lines of each length up to 80. */
  for (size_t len = 6; len <= 80; len++) {
    for (size_t k = 5; k < len; k++) {
      for (size_t b = 0; b < sizeof bad_bytes; b++) {
        memcpy(line, "PING ", 5);
        memset(line + 5, 'a', len - 5);
        line[k] = (char)bad_bytes[b];
        proto_error_t err;
        proto_error_code_t rc = proto_parse_line(DMO, SRV, line, len, NULL, &err);
        snprintf(want, sizeof want, "BAD_BYTES at %zu", k);
        snprintf(got, sizeof got, "%s at %zu", code_name(rc), err.offset);
        meta_t m = {"EDGE-BYTES", EDGE_REQ, "proto_bytes.c"};
        if (!expect(&t, rc == PROTO_ERR_BAD_BYTES && err.offset == k, &m, "bad byte found", want,
                    got)) {
          fprintf(stderr, "  (len %zu, byte 0x%02x)\n", len, bad_bytes[b]);
        }
      }
    }
  }
  /* JSON strings of each length with a quote escape or a control byte at each offset. */
  for (size_t n = 0; n <= 70; n++) {
    size_t len = n + 4;
    line[0] = '[';
    line[1] = '"';
    memset(line + 2, 'x', n);
    line[n + 2] = '"';
    line[n + 3] = ']';
    meta_t m = {"EDGE-JSON", EDGE_REQ, "proto_json.c"};
    expect(&t, proto_json_valid(line, len, NULL), &m, "plain string", "valid", show(line, len));
    for (size_t k = 2; k + 1 < n + 2; k++) {
      line[k] = '\\';
      line[k + 1] = '"';
      expect(&t, proto_json_valid(line, len, NULL), &m, "escaped quote", "valid", show(line, len));
      line[k] = 0x1F;
      size_t bad = 0;
      bool ok = proto_json_valid(line, len, &bad);
      snprintf(want, sizeof want, "invalid at %zu", k);
      snprintf(got, sizeof got, "%s at %zu", ok ? "valid" : "invalid", bad);
      expect(&t, !ok && bad == k, &m, "control byte", want, got);
      line[k] = 'x';
      line[k + 1] = 'x';
    }
  }
  /* Field splitting across 16-byte chunks: every pair of field lengths. */
  for (size_t a = 1; a <= 40; a++) {
    for (size_t b = 1; b <= 40; b++) {
      memcpy(line, "POSITION ", 9);
      memset(line + 9, 's', a);
      line[9 + a] = ' ';
      memset(line + 10 + a, 'i', b);
      memcpy(line + 10 + a + b, " 12 345", 7);
      size_t len = 17 + a + b;
      proto_command_t cmd;
      proto_error_t err;
      proto_error_code_t rc = proto_parse_line(DMO, SRV, line, len, &cmd, &err);
      snprintf(want, sizeof want, "stream %zu, instance %zu, 12, 345", a, b);
      snprintf(got, sizeof got, "%s stream %zu, instance %zu, %lld, %lld", code_name(rc),
               cmd.stream.len, cmd.instance.len, (long long)cmd.prev_token,
               (long long)cmd.new_token);
      meta_t m = {"EDGE-FIELDS", EDGE_REQ, "proto_parse.c split_fields"};
      expect(&t,
             rc == PROTO_OK && cmd.stream.len == a && cmd.instance.len == b &&
                 cmd.stream.ptr == line + 9 && cmd.prev_token == 12 && cmd.new_token == 345,
             &m, "fields", want, got);
    }
  }
  finish(&t, "scan boundaries");
}
END_TEST

/* A rejection text is sent as "ERROR <text>": it must be a valid line itself. */
static void check_error_line(tally_t *t, const meta_t *m, proto_dialect_t dialect,
                             proto_sender_t receiver, const char *text, size_t n) {
  if (n == 0) return;
  static char line[PROTO_MAX_LINE + 8];
  memcpy(line, "ERROR ", 6);
  memcpy(line + 6, text, n);
  proto_error_t err;
  proto_sender_t as = receiver == SRV ? CLI : SRV;
  proto_error_code_t rc = proto_parse_line(dialect, as, line, n + 6, NULL, &err);
  expect_code(t, m, rc, PROTO_OK, &err);
}

/* ---- mutated real lines ------------------------------------------------------------------------
 */

#define MUTATION_REQ                                                                               \
  "on any input the codec returns a verdict without crashing; what it accepts formats back, what " \
  "it refuses gets a printable message and a valid ERROR text"

static bool printable_utf8(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F) return false;
  }
  proto_error_t err;
  /* Reuse the codec's own check: a PING carrying the text must be clean bytes. */
  static char line[PROTO_MAX_LINE + 8];
  if (n > PROTO_MAX_LINE - 5) return false;
  memcpy(line, "PING ", 5);
  memcpy(line + 5, s, n);
  return proto_parse_line(DMO, SRV, line, n + 5, NULL, &err) == PROTO_OK;
}

START_TEST(test_mutations) {
  tally_t t = {0, 0};
  transcript_t tr = load_transcript("reference/synapse-1.66/real-pair.txt");
  transcript_t tr12 = load_transcript("reference/synapse-1.12/real-pair.txt");
  static const char alphabet[] =
      " \t\r\n\0\"\\[]{},:-+.0123456789eEabtnulNaIfy\xc3\xa9\xff\x80\xed";
  static char line[600];
  static char text[PROTO_MAX_LINE + 1];
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (int round = 0; round < 20000; round++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const transcript_t *src = (x & 1) ? &tr : &tr12;
    proto_dialect_t dialect = (x & 2) ? DMO : D18;
    proto_sender_t sender = (x & 4) ? SRV : (x & 8) ? CLI : ANY;
    const wire_line_t *w = &src->lines[(x >> 8) % src->count];
    size_t len = w->len < 500 ? w->len : 500;
    memcpy(line, w->text, len);
    int edits = 1 + (int)((x >> 20) % 4);
    for (int e = 0; e < edits; e++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      size_t at = len > 0 ? (size_t)((x >> 16) % len) : 0;
      char c = alphabet[(x >> 40) % (sizeof alphabet - 1)];
      switch (x % 3) {
        case 0:
          if (len > 0) line[at] = c;
          break;
        case 1:
          if (len < sizeof line - 1) {
            memmove(line + at + 1, line + at, len - at);
            line[at] = c;
            len++;
          }
          break;
        default:
          if (len > 0) {
            memmove(line + at, line + at + 1, len - at - 1);
            len--;
          }
          break;
      }
    }
    char id[48];
    snprintf(id, sizeof id, "MUT-%d", round);
    meta_t m = {id, MUTATION_REQ, "STYLE.md (never crash on bad input)"};
    proto_command_t cmd;
    proto_error_t err;
    proto_error_code_t rc = proto_parse_line(dialect, sender, line, len, &cmd, &err);
    if (rc == PROTO_OK) {
      static char out[PROTO_MAX_LINE + 1];
      int n = proto_format_command(dialect, &cmd, out, sizeof out, &err);
      if (!expect(&t, n >= 0, &m, "accepted line formats", show(line, len),
                  show_cstr(err.message))) {
        continue;
      }
      proto_command_t back;
      rc = proto_parse_line(dialect, ANY, out, (size_t)n, &back, &err);
      char a[1024], b[1024];
      describe(dialect, &cmd, a, sizeof a);
      describe(dialect, &back, b, sizeof b);
      expect(&t, rc == PROTO_OK && strcmp(a, b) == 0, &m, "formatted line parses the same", a, b);
    } else {
      size_t mlen = strlen(err.message);
      expect(&t, mlen > 0 && printable_utf8(err.message, mlen), &m, "printable message",
             "printable UTF-8", show(err.message, mlen));
      size_t n = proto_rejection_text(dialect, line, len, &err, text, sizeof text);
      if (n > 0) check_error_line(&t, &m, dialect, sender == SRV ? CLI : SRV, text, n);
    }
  }
  free_transcript(&tr);
  free_transcript(&tr12);
  finish(&t, "mutations");
}
END_TEST

/* ---- malformed input --------------------------------------------------------------------------
 */

START_TEST(test_malformed) {
  tally_t t = {0, 0};
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const bad_case_t *c = &bad_cases[i];
    meta_t m = {c->id, BAD_REQ, "P §1.2, §2.1, §2.2"};
    proto_command_t cmd;
    proto_error_t err;
    proto_error_code_t rc =
        proto_parse_line(c->dialect, c->sender, c->line.p, c->line.n, &cmd, &err);
    char what[600];
    snprintf(what, sizeof what, "line '%s' (%s, %s)", show(c->line.p, c->line.n),
             proto_dialect_name(c->dialect),
             c->sender == SRV   ? "from server"
             : c->sender == CLI ? "from client"
                                : "any sender");
    if (!expect_code(&t, &m, rc, c->code, &err)) {
      fprintf(stderr, "  (%s)\n", what);
      continue;
    }
    expect(&t, err.code == c->code, &m, "err.code matches the return", code_name(c->code),
           code_name(err.code));
    if (c->field != NULL) {
      expect(&t, err.field != NULL && strcmp(err.field, c->field) == 0, &m, "err.field", c->field,
             show_cstr(err.field));
    }
    expect(&t, strstr(err.message, c->fragment) != NULL, &m, "message fragment", c->fragment,
           show_cstr(err.message));
    /* Every message names the command (when known), the field and what was expected. */
    if (err.kind != PROTO_CMD_NONE) {
      const char *name = proto_command_name(err.kind);
      expect(&t, strncmp(err.message, name, strlen(name)) == 0 && err.message[strlen(name)] == ':',
             &m, "message starts with the command", name, show_cstr(err.message));
    }
    if (err.field != NULL) {
      char quoted[64];
      snprintf(quoted, sizeof quoted, "field '%s'", err.field);
      expect(&t, strstr(err.message, quoted) != NULL, &m, "message names the field", quoted,
             show_cstr(err.message));
    }
    expect(&t, err.offset <= c->line.n, &m, "offset within the line", "<= line length",
           "past the end");
    expect(&t, cmd.kind == PROTO_CMD_NONE, &m, "no command on failure", "PROTO_CMD_NONE",
           proto_command_name(cmd.kind));
  }
  /* The documented example message, exactly, and its offset. */
  meta_t m = {"RD-01x", BAD_REQ, "brief example message"};
  proto_error_t err;
  proto_parse_line(D18, SRV, "RDATA events x1 []", 18, NULL, &err);
  expect(&t, err.offset == 13, &m, "offset of the token", "13", "other");
  finish(&t, "malformed");
}
END_TEST

/* ---- JSON --------------------------------------------------------------------------------------
 */

START_TEST(test_json) {
  tally_t t = {0, 0};
  for (size_t i = 0; i < sizeof json_cases / sizeof json_cases[0]; i++) {
    const json_case_t *c = &json_cases[i];
    meta_t m = {c->id, JSON_REQ, "RFC 8259; P §1.1 JSON style (NaN/Infinity rejected, v1.20)"};
    size_t bad = 12345;
    bool ok = proto_json_valid(c->text.p, c->text.n, &bad);
    expect(&t, ok == c->valid, &m, show(c->text.p, c->text.n), c->valid ? "valid" : "invalid",
           ok ? "valid" : "invalid");
    if (!c->valid && c->bad_offset >= 0) {
      char want[32], got[32];
      snprintf(want, sizeof want, "bad_offset %ld", c->bad_offset);
      snprintf(got, sizeof got, "bad_offset %zu", bad);
      expect(&t, bad == (size_t)c->bad_offset, &m, "offending byte", want, got);
    }
  }
  /* Depth: 256 nested arrays are fine, 257 are not. */
  char nested[600];
  for (size_t depth = 255; depth <= 257; depth++) {
    memset(nested, '[', depth);
    memset(nested + depth, ']', depth);
    meta_t m = {depth <= 256 ? "JV-D-ok" : "JV-D-deep", JSON_REQ, "proto.h (depth <= 256)"};
    bool ok = proto_json_valid(nested, depth * 2, NULL);
    expect(&t, ok == (depth <= 256), &m, "nesting", depth <= 256 ? "valid" : "invalid",
           ok ? "valid" : "invalid");
  }
  meta_t m = {"JV-NULL", JSON_REQ, "proto.h"};
  expect(&t, !proto_json_valid(NULL, 0, NULL), &m, "NULL buffer", "invalid", "valid");
  finish(&t, "json");
}
END_TEST

/* ---- JSON against the reference validator ------------------------------------------------------
 */

typedef struct jgen {
  uint64_t x;
  char *buf;
  size_t len, cap;
} jgen_t;

static uint64_t jgen_next(jgen_t *g) {
  g->x ^= g->x << 13;
  g->x ^= g->x >> 7;
  g->x ^= g->x << 17;
  return g->x;
}

static void jgen_put(jgen_t *g, const char *p, size_t n) {
  if (g->len + n > g->cap) n = g->cap - g->len;
  memcpy(g->buf + g->len, p, n);
  g->len += n;
}

static void jgen_str(jgen_t *g, const char *s) {
  jgen_put(g, s, strlen(s));
}

/* Pieces that sit on the edges of the grammar: UTF-8 at the limits of each length and
 * just past them, escapes, numbers, whitespace (CR and LF included). */
// clang-format off
static const char *const jgen_string_pieces[] = {
    "a", "plain ascii text, longer than sixteen bytes", "\\\"", "\\\\", "\\/", "\\b", "\\n",
    "\\t", "\\u00e9", "\\uD83D\\uDE00", "\\uD800", "\\uDFFF", "\\u12G4", "\\u12", "\\x", "\\",
    "\xc2\x80", "\xdf\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\xa0\x80", "\xe0\x9f\xbf",
    "\xed\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
    "\xf0\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff",
    "\x80", "\xe2\x82", "\xf0\x9f\x98", "\xc3", "\x1f", "\x7f", "\t", "\xc3\xa9t\xc3\xa9"};
static const char *const jgen_numbers[] = {
    "0",     "-0",  "01",   "-01", "1.",   "1.5",  "1e",    "1e+",  "1E-5", "-",   "--1",
    "1.0e308", ".5", "+1",  "0.0", "-0.0e-0", "123456789012345678901234567890", "1e999999",
    "-I", "Infinity", "NaN", "0x10", "1.e5", "9"};
static const char *const jgen_spaces[] = {"", "", "", " ", "\t", "\n", "\r\n", "  \t "};
// clang-format on

static void jgen_value(jgen_t *g, int depth) {
  uint64_t r = jgen_next(g);
  int kind = depth > 6 ? (int)(r % 5) : (int)(r % 8);
  switch (kind) {
    case 0: {
      jgen_str(g, "\"");
      int pieces = (int)((r >> 8) % 5);
      for (int i = 0; i < pieces; i++) {
        uint64_t q = jgen_next(g);
        /* Mostly well-formed pieces, so most strings are valid and long ones reach the
         * vector paths; the rest are edge cases. */
        jgen_str(g, (q & 3) != 0 ? jgen_string_pieces[(q >> 2) % 10]
                                 : jgen_string_pieces[(q >> 2) % (sizeof jgen_string_pieces /
                                                                  sizeof jgen_string_pieces[0])]);
      }
      jgen_str(g, "\"");
      break;
    }
    case 1:
      jgen_str(g, jgen_numbers[(r >> 8) % (sizeof jgen_numbers / sizeof jgen_numbers[0])]);
      break;
    case 2:
      jgen_str(g, (r >> 8) % 4 == 0 ? "true" : (r >> 8) % 4 == 1 ? "false" : "null");
      break;
    case 3:
      jgen_str(g, "1795911878002");
      break;
    case 4:
      jgen_str(g, "\"!bXzOUdvAFAfcekmnYl:test.local\"");
      break;
    default: {
      bool object = kind == 5;
      jgen_str(g, object ? "{" : "[");
      int n = (int)((r >> 8) % 5);
      for (int i = 0; i < n; i++) {
        if (i > 0) jgen_str(g, ",");
        jgen_str(g, jgen_spaces[jgen_next(g) % 8]);
        if (object) {
          jgen_str(g, "\"key\"");
          jgen_str(g, jgen_spaces[jgen_next(g) % 8]);
          jgen_str(g, ":");
        }
        jgen_value(g, depth + 1);
        jgen_str(g, jgen_spaces[jgen_next(g) % 8]);
      }
      jgen_str(g, object ? "}" : "]");
      break;
    }
  }
}

#define JREF_REQ                                                                                \
  "the codec's JSON validator accepts exactly RFC 8259 JSON (its documented choices: depth <= " \
  "256, any \\u escape) and names the first offending byte and why"

START_TEST(test_json_against_reference) {
  tally_t t = {0, 0};
  static char buf[4096];
  static const char alphabet[] = " \t\r\n\0\"\\[]{},:-+.0eEuntfa1\xc3\xa9\xff\x80\xed\xf4\x90";
  jgen_t g = {0x2545F4914F6CDD1DULL, buf, 0, sizeof buf};
  int valid = 0, invalid = 0;
  for (int round = 0; round < 220000; round++) {
    g.len = 0;
    uint64_t r = jgen_next(&g);
    if (r % 64 == 0) {
      /* Nesting around the limit of 256, with something inside. */
      size_t depth = 250 + (size_t)((r >> 8) % 12);
      for (size_t i = 0; i < depth; i++) jgen_str(&g, (r >> 20) & 1 ? "[" : "{\"k\":");
      jgen_value(&g, 7);
      for (size_t i = 0; i < depth; i++) jgen_str(&g, (r >> 20) & 1 ? "]" : "}");
    } else {
      jgen_str(&g, jgen_spaces[(r >> 8) % 8]);
      jgen_value(&g, (int)((r >> 12) % 3));
      jgen_str(&g, jgen_spaces[(r >> 16) % 8]);
    }
    /* Half the inputs are mutated: bytes replaced, inserted, deleted, or the end cut. */
    if ((r >> 24) & 1) {
      int edits = 1 + (int)((r >> 28) % 3);
      for (int e = 0; e < edits && g.len > 0; e++) {
        uint64_t q = jgen_next(&g);
        size_t at = (size_t)((q >> 16) % g.len);
        char c = alphabet[(q >> 40) % (sizeof alphabet - 1)];
        switch (q % 4) {
          case 0:
            buf[at] = c;
            break;
          case 1:
            if (g.len < sizeof buf) {
              memmove(buf + at + 1, buf + at, g.len - at);
              buf[at] = c;
              g.len++;
            }
            break;
          case 2:
            memmove(buf + at, buf + at + 1, g.len - at - 1);
            g.len--;
            break;
          default:
            g.len = at;
            break;
        }
      }
    }
    char diff[700];
    const char *d = jref_compare(buf, g.len, diff, sizeof diff);
    char id[48];
    snprintf(id, sizeof id, "JREF-%d", round);
    meta_t m = {id, JREF_REQ, "tests/json_reference.h"};
    if (!expect(&t, d == NULL, &m, show(buf, g.len), "same as the reference", d ? d : "")) {
      if (t.failures > 20) break;
    }
    jref_t j;
    if (jref_check(buf, g.len, false, &j)) {
      valid++;
    } else {
      invalid++;
    }
  }
  printf("json against reference: %d valid, %d invalid\n", valid, invalid);
  ck_assert_msg(valid > 40000 && invalid > 40000, "too one-sided a mix: %d/%d", valid, invalid);
  finish(&t, "json against reference");
}
END_TEST

/* ---- the parser's short way against the complete parser ---------------------------------------
 */

#define PREF_REQ                                                                                 \
  "proto_parse_line answers every line exactly as the complete parser does (result, every "     \
  "command field, error code, field, offset and message), whichever way it takes"

/* Lines of every command in both dialects, good and bad, short and long: the seeds of
 * the generated corpus. */
// clang-format off
static const char *const pref_seeds[] = {
    "RDATA events master 12345 [\"ev\",[\"$KVBQIqvvQ9MqTWgd2Napbqzx3e9ztErf7D5R0000001\",\"!bXzOUdvAFAfcekmnYl:test.local\",\"m.room.member\",\"@alice1:test.local\",null,null,\"join\",false,false]]",
    "RDATA events master batch [\"ev\",[\"$a\",\"!r:t\",\"m.room.member\",\"@a:t\",null,null,\"join\",false,false]]",
    "RDATA caches master 1002 [\"cs_cache_fake\",[\"!bXzOUdvAFAfcekmnYl:test.local\",\"@alice2:test.local\"],1795911878002]",
    "RDATA typing master 1005 [\"!bXzOUdvAFAfcekmnYl:test.local\",[\"@alice5:test.local\"]]",
    "RDATA events 12345 [\"ev\",[\"$a\",\"!r:t\",null,-1.5e3,0,{\"k\":[true,{}],\"l\":\"\"}]]",
    "RDATA events master 1 {\"a\" : [ 1 , 2 ]\t, \"b\":\"caf\xc3\xa9 \\u00e9\\n\\\"\"}",
    "RDATA events master 1 \t[1]\t",
    "RDATA events master 007 \"just a string that is longer than sixteen bytes\"",
    "RDATA events master -9223372036854775808 123456789012345678901234567890",
    "RDATA events master 9223372036854775808 [1]",
    "RDATA events master +5 [1]",
    "RDATA events master 5x [1]",
    "RDATA events master 5 [1,]",
    "RDATA events master 5 [\"unterminated",
    "RDATA events master 5 {\"a\":1,\"b\"}",
    "RDATA events master 5 [1] [2]",
    "RDATA  master 5 [1]",
    "RDATA events  5 [1]",
    "RDATA events master  [1]",
    "RDATA events master 5",
    "RDATA events master 5 ",
    "RDATA events master",
    "RDATA",
    "RDATA ",
    "RDATAX events master 5 [1]",
    "rdata events master 5 [1]",
    "POSITION events master 5 6",
    "POSITION device_lists master 1795911877513 1795911877514",
    "POSITION events 5",
    "POSITION events 1795911877513",
    "POSITION events master 5 6 7",
    "POSITION events master 5",
    "POSITION  master 5 6",
    "POSITION events  5 6",
    "POSITION events master -5 +6",
    "POSITION events master 5 99999999999999999999",
    "POSITIONS events master 5 6",
    "PING 1795911877513",
    "PING 1795911877513 and some more text",
    "PING",
    "PING ",
    "PING \xc3\xa9t\xc3\xa9 1795911877513",
    "PINGS 1795911877513",
    "SERVER localhost:8823",
    "NAME synapse.app.generic_worker",
    "REPLICATE",
    "REPLICATE ",
    "REPLICATE events 53",
    "REPLICATE ALL NOW",
    "REPLICATE events now",
    "USER_SYNC master @user:test.local start 1795911877513",
    "USER_SYNC master @user:test.local DEVICE start 1795911877513",
    "USER_SYNC @user:test.local end 1795911877513",
    "USER_SYNC master @user:test.local middle 1",
    "CLEAR_USER_SYNC master",
    "FEDERATION_ACK master 1795911877513",
    "FEDERATION_ACK 1795911877513",
    "REMOVE_PUSHER app_id push_key @user:test.local",
    "INVALIDATE_CACHE get_user_by_id [\"@user:test.local\"]",
    "INVALIDATE_CACHE get_user_by_id null",
    "USER_IP @user:test.local [\"token\",\"127.0.0.1\",\"agent\",\"DEVICE\",1795911877513]",
    "USER_IP @user:test.local [\"token\",\"127.0.0.1\"]",
    "LOCK_RELEASED [\"master\",\"lock\",\"key\"]",
    "LOCK_RELEASED {\"a\":1}",
    "ERROR failed to parse line: something",
    "SYNC 1795911877513",
    "REMOTE_SERVER_UP example.com",
    "NEW_ACTIVE_TASK task_1",
    "CANCEL_TASK task_1",
    "HELLO world",
    "   ",
    "",
};
// clang-format on

/* Compares the two parsers on line[0..len) in both dialects from every sender (and
 * with an invalid dialect and sender), the line in a heap block of exactly its length
 * so that the sanitizers see any read past it. */
static void pref_check(tally_t *t, const char *id, const char *line, size_t len, long *count) {
  static const proto_dialect_t dialects[] = {PROTO_DIALECT_2018, PROTO_DIALECT_MODERN};
  static const proto_sender_t senders[] = {PROTO_SENDER_SERVER, PROTO_SENDER_CLIENT,
                                           PROTO_SENDER_ANY};
  char *copy = malloc(len > 0 ? len : 1);
  ck_assert_ptr_nonnull(copy);
  if (len > 0) memcpy(copy, line, len);
  meta_t m = {id, PREF_REQ, "proto/proto_parse_fast.c, proto/proto_parse.c"};
  char diff[900];
  for (size_t d = 0; d < 2; d++) {
    for (size_t s = 0; s < 3; s++) {
      const char *got = pref_compare(dialects[d], senders[s], copy, len, diff, sizeof diff);
      expect(t, got == NULL, &m, show(copy, len), "the reference's answer", got ? got : "");
      (*count)++;
    }
  }
  if (*count % 97 == 0) {
    const char *got = pref_compare((proto_dialect_t)0, PROTO_SENDER_SERVER, copy, len, diff,
                                   sizeof diff);
    if (got == NULL)
      got = pref_compare(PROTO_DIALECT_MODERN, (proto_sender_t)0, copy, len, diff, sizeof diff);
    expect(t, got == NULL, &m, show(copy, len), "the reference's answer", got ? got : "");
  }
  free(copy);
}

/* One random edit of buf[0..*len): a byte replaced, inserted or deleted, or the end cut. */
static void pref_mutate(jgen_t *g, char *buf, size_t *len, size_t cap) {
  static const char alphabet[] = " \t\r\n\0\"\\[]{},:-+.0123456789eEbatchnulltruefalse"
                                 "\xc3\xa9\xff\x80\xed\xf4\x90\x0b\x0c\x0d\x0e\x1f\x7f";
  if (*len == 0) return;
  uint64_t q = jgen_next(g);
  size_t at = (size_t)((q >> 16) % *len);
  char c = alphabet[(q >> 40) % (sizeof alphabet - 1)];
  switch (q % 5) {
    case 0:
    case 1:
      buf[at] = c;
      break;
    case 2:
      if (*len < cap) {
        memmove(buf + at + 1, buf + at, *len - at);
        buf[at] = c;
        (*len)++;
      }
      break;
    case 3:
      memmove(buf + at, buf + at + 1, *len - at - 1);
      (*len)--;
      break;
    default:
      *len = at;
      break;
  }
}

START_TEST(test_parse_against_reference) {
  tally_t t = {0, 0};
  long count = 0;
  static char buf[PROTO_MAX_LINE + 64];
  const size_t nseeds = sizeof pref_seeds / sizeof pref_seeds[0];
  jgen_t g = {0x9E3779B97F4A7C15ULL, buf, 0, sizeof buf};
  char id[48];

  /* The seeds, every line of the case tables, and every prefix of each seed. */
  for (size_t i = 0; i < nseeds; i++) {
    size_t n = strlen(pref_seeds[i]);
    for (size_t cut = 0; cut <= n; cut++) {
      snprintf(id, sizeof id, "PREF-S%zu-cut%zu", i, cut);
      pref_check(&t, id, pref_seeds[i], cut, &count);
    }
  }
  for (size_t i = 0; i < sizeof example_cases / sizeof example_cases[0]; i++)
    pref_check(&t, example_cases[i].id, example_cases[i].line, strlen(example_cases[i].line),
               &count);
  for (size_t i = 0; i < sizeof field_cases / sizeof field_cases[0]; i++)
    pref_check(&t, field_cases[i].id, field_cases[i].line.p, field_cases[i].line.n, &count);
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
    pref_check(&t, bad_cases[i].id, bad_cases[i].line.p, bad_cases[i].line.n, &count);

  /* Every byte value at every position of the short seeds (and of the first 48 bytes
   * of the long ones). */
  for (size_t i = 0; i < nseeds; i++) {
    size_t n = strlen(pref_seeds[i]);
    if (n > 48) n = 48;
    for (size_t at = 0; at < n; at++) {
      for (int c = 0; c < 256; c++) {
        memcpy(buf, pref_seeds[i], n);
        buf[at] = (char)c;
        snprintf(id, sizeof id, "PREF-S%zu-at%zu-x%02x", i, at, c);
        pref_check(&t, id, buf, n, &count);
        if (t.failures > 20) break;
      }
    }
  }

  /* Generated rows (tests/json_reference.h's mix of edge cases) behind the heads of
   * every command that carries JSON and of the commonest lines, then mutated. */
  static const char *const heads[] = {
      "RDATA events master 5 ", "RDATA events 5 ", "RDATA caches master batch ",
      "RDATA events master 1795911877513 ", "INVALIDATE_CACHE func ", "USER_IP @u:t ",
      "LOCK_RELEASED ", "POSITION events master 5 ", "PING ", "RDATA e master -0 "};
  for (int round = 0; round < 40000 && t.failures <= 20; round++) {
    uint64_t r = jgen_next(&g);
    g.len = 0;
    if (r % 4 == 0) {
      const char *seed = pref_seeds[(r >> 8) % nseeds];
      jgen_str(&g, seed);
    } else {
      jgen_str(&g, heads[(r >> 8) % (sizeof heads / sizeof heads[0])]);
      jgen_value(&g, (int)((r >> 16) % 3));
    }
    int edits = (r >> 24) % 3 == 0 ? 0 : 1 + (int)((r >> 28) % 3);
    for (int e = 0; e < edits; e++) pref_mutate(&g, buf, &g.len, sizeof buf);
    snprintf(id, sizeof id, "PREF-G%d", round);
    pref_check(&t, id, buf, g.len, &count);
  }

  /* Long lines at and around the limit: the short way copies rows of any length. */
  for (size_t n = PROTO_MAX_LINE - 2; n <= PROTO_MAX_LINE + 1; n++) {
    static const char head[] = "RDATA events master 5 [\"";
    memcpy(buf, head, sizeof head - 1);
    memset(buf + sizeof head - 1, 'a', n - (sizeof head - 1) - 2);
    memcpy(buf + n - 2, "\"]", 2);
    snprintf(id, sizeof id, "PREF-L%zu", n);
    pref_check(&t, id, buf, n, &count);
  }
  printf("parse against reference: %ld comparisons\n", count);
  finish(&t, "parse against reference");
}
END_TEST

/* ---- ERROR texts ------------------------------------------------------------------------------
 */

START_TEST(test_rejection_texts) {
  tally_t t = {0, 0};
  static char text[PROTO_MAX_LINE + 1];
  for (size_t i = 0; i < sizeof reject_cases / sizeof reject_cases[0]; i++) {
    const reject_case_t *c = &reject_cases[i];
    meta_t m = {c->id, REJECT_REQ, c->source};
    proto_error_t err;
    proto_error_code_t rc =
        proto_parse_line(c->dialect, c->sender, c->line.p, c->line.n, NULL, &err);
    expect(&t, rc != PROTO_OK, &m, "the line is refused", "an error", "PROTO_OK");
    size_t n = proto_rejection_text(c->dialect, c->line.p, c->line.n, &err, text, sizeof text);
    expect(&t, strlen(text) == n, &m, "returned length", "strlen(text)", "other");
    if (c->exact != NULL) {
      expect_str(&t, &m, "ERROR text", text, n, c->exact);
    } else {
      size_t pl = strlen(c->prefix), sl = strlen(c->suffix);
      expect(&t, n >= pl && memcmp(text, c->prefix, pl) == 0, &m, "ERROR text starts with",
             show_cstr(c->prefix), show(text, n));
      expect(&t, n >= sl && memcmp(text + n - sl, c->suffix, sl) == 0, &m, "ERROR text ends with",
             show_cstr(c->suffix), show(text, n));
      expect(&t, strstr(text, err.message) != NULL, &m, "ERROR text holds the message",
             show_cstr(err.message), show(text, n));
    }
    proto_sender_t receiver = c->sender == SRV ? CLI : SRV;
    check_error_line(&t, &m, c->dialect, receiver, text, n);
  }

  /* Every malformed case: the text starts like Synapse's (R FR-09 compares the part
   * before the first ':'), or is empty where Synapse sends nothing. */
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const bad_case_t *c = &bad_cases[i];
    if (c->sender == ANY) continue;
    meta_t m = {c->id, "the ERROR text starts like Synapse's for the dialect", "R FR-09; P §1.2"};
    proto_error_t err;
    proto_parse_line(c->dialect, c->sender, c->line.p, c->line.n, NULL, &err);
    size_t n = proto_rejection_text(c->dialect, c->line.p, c->line.n, &err, text, sizeof text);
    bool has_space = memchr(c->line.p, ' ', c->line.n) != NULL;
    bool undecodable = false;
    for (size_t k = 0; k < c->line.n; k++) undecodable |= (unsigned char)c->line.p[k] >= 0x80;
    const char *want;
    if (err.code == PROTO_ERR_BLANK) {
      want = "";
    } else if (undecodable && err.code == PROTO_ERR_BAD_BYTES &&
               strstr(err.message, "ill-formed") != NULL) {
      want = "";
    } else if (c->dialect == D18 && !has_space) {
      want = "";
    } else if (err.code == PROTO_ERR_WRONG_DIRECTION ||
               (c->dialect == D18 && err.code == PROTO_ERR_UNKNOWN_COMMAND)) {
      want = "invalid command: ";
    } else if (c->dialect == DMO) {
      want = "failed to parse line: ";
    } else {
      want = "failed to parse line for  '";
    }
    bool ok = want[0] == '\0' ? n == 0 : strncmp(text, want, strlen(want)) == 0;
    expect(&t, ok, &m, "ERROR text prefix", want[0] ? want : "(nothing sent)", show(text, n));
    check_error_line(&t, &m, c->dialect, c->sender == SRV ? CLI : SRV, text, n);
  }

  /* A near-limit line is echoed cut, so "ERROR <text>" still fits in a line. */
  char *line = malloc(PROTO_MAX_LINE);
  ck_assert_ptr_nonnull(line);
  memcpy(line, "RDATA s m x ", 12);
  for (size_t k = 12; k < PROTO_MAX_LINE; k++)
    line[k] = (k % 3 == 0) ? '\'' : (k % 3 == 1) ? '\t' : 'a';
  for (int d = 0; d < 2; d++) {
    proto_dialect_t dialect = d == 0 ? DMO : D18;
    meta_t m = {d == 0 ? "RJ-LONG-modern" : "RJ-LONG-2018", REJECT_REQ, "proto.h (echo cut)"};
    proto_error_t err;
    proto_parse_line(dialect, SRV, line, PROTO_MAX_LINE, NULL, &err);
    size_t n = proto_rejection_text(dialect, line, PROTO_MAX_LINE, &err, text, sizeof text);
    expect(&t, n + 6 <= PROTO_MAX_LINE && n > 1000, &m, "text fits an ERROR line",
           "1000 < length <= 16378", "other");
    expect(&t, n >= 5 && memcmp(text + n - 5, "...):", 5) == 0, &m, "cut marked",
           "...):", show(text + (n > 20 ? n - 20 : 0), n > 20 ? 20 : n));
    check_error_line(&t, &m, dialect, CLI, text, n);
    /* A small buffer truncates, never past cap - 1, never inside a UTF-8 sequence. */
    char small[12];
    n = proto_rejection_text(dialect, line, PROTO_MAX_LINE, &err, small, sizeof small);
    expect(&t, n == 11 && strlen(small) == 11, &m, "truncated to cap - 1", "11", show(small, n));
  }
  free(line);
  meta_t m = {"RJ-NULL", REJECT_REQ, "proto.h"};
  char small[8] = "x";
  expect(&t, proto_rejection_text(DMO, "x", 1, NULL, small, sizeof small) == 0 && small[0] == 0, &m,
         "NULL err", "empty", small);
  expect(&t, proto_rejection_text(DMO, "x", 1, NULL, NULL, 0) == 0, &m, "NULL buf", "0", "other");
  finish(&t, "rejection texts");
}
END_TEST

/* ---- formatting ---------------------------------------------------------------------------------
 */

START_TEST(test_format) {
  tally_t t = {0, 0};
  static char buf[PROTO_MAX_LINE + 1];
  for (size_t i = 0; i < sizeof format_cases / sizeof format_cases[0]; i++) {
    const format_case_t *c = &format_cases[i];
    meta_t m = {c->id, FORMAT_REQ, "P §1.1 line shape and outbound guards; proto.h"};
    proto_error_t err;
    int n = proto_format_command(c->dialect, &c->cmd, buf, sizeof buf, &err);
    if (c->expected != NULL) {
      if (!expect(&t, n >= 0, &m, "format succeeds", c->expected, show_cstr(err.message))) continue;
      expect_str(&t, &m, "line", buf, (size_t)n, c->expected);
      /* What format writes parses back to the same fields (any sender: direction is
       * not format's business). */
      proto_command_t back;
      proto_error_code_t rc = proto_parse_line(c->dialect, ANY, buf, (size_t)n, &back, &err);
      if (!expect_code(&t, &m, rc, PROTO_OK, &err)) continue;
      char want[1024], got[1024];
      describe(c->dialect, &c->cmd, want, sizeof want);
      describe(c->dialect, &back, got, sizeof got);
      expect(&t, strcmp(want, got) == 0, &m, "parse(format(cmd)) == cmd", want, got);
    } else {
      expect(&t, n == -1, &m, "format fails", "-1", show(buf, n > 0 ? (size_t)n : 0));
      expect_code(&t, &m, err.code, c->code, &err);
      expect(&t, strstr(err.message, c->fragment) != NULL, &m, "message", c->fragment,
             show_cstr(err.message));
      expect(&t, buf[0] == '\0', &m, "buffer left empty", "\"\"", show_cstr(buf));
    }
  }

  /* Length: exactly 16384 bytes is fine, one more is refused (Synapse: "Failed to send
   * command ... as too long"), and so is a buffer too small for the line. */
  char *text = malloc(PROTO_MAX_LINE);
  ck_assert_ptr_nonnull(text);
  memset(text, 'e', PROTO_MAX_LINE);
  for (size_t extra = 0; extra <= 1; extra++) {
    meta_t m = {extra == 0 ? "FL-01" : "FL-02", FORMAT_REQ, "P §1.1 over-long outbound (PR #4748)"};
    proto_command_t cmd = {.kind = PROTO_CMD_ERROR};
    cmd.text.ptr = text;
    cmd.text.len = PROTO_MAX_LINE - 6 + extra;
    proto_error_t err;
    int n = proto_format_command(DMO, &cmd, buf, sizeof buf, &err);
    if (extra == 0) {
      expect(&t, n == PROTO_MAX_LINE, &m, "16384-byte line", "16384", show_cstr(err.message));
    } else {
      expect(&t, n == -1 && err.code == PROTO_ERR_TOO_LONG, &m, "16385-byte line",
             "-1 PROTO_ERR_TOO_LONG", show_cstr(err.message));
    }
  }
  meta_t m = {"FL-03", FORMAT_REQ, "proto.h (cap - 1)"};
  proto_command_t ping = {.kind = PROTO_CMD_PING, .text = S("1234")};
  char small[9];
  proto_error_t err;
  int n = proto_format_command(DMO, &ping, small, sizeof small, &err);
  expect(&t, n == -1 && err.code == PROTO_ERR_TOO_LONG && small[0] == '\0', &m,
         "9-byte line into 9 bytes", "-1 PROTO_ERR_TOO_LONG", show_cstr(err.message));
  char fits[10];
  n = proto_format_command(DMO, &ping, fits, sizeof fits, &err);
  expect_str(&t, &m, "9-byte line into 10 bytes", fits, n > 0 ? (size_t)n : 0, "PING 1234");
  meta_t m2 = {"FL-04", FORMAT_REQ, "proto.h"};
  expect(&t, proto_format_command(DMO, NULL, fits, sizeof fits, &err) == -1, &m2, "NULL cmd", "-1",
         "other");
  expect(&t, proto_format_command(DMO, &ping, NULL, 10, &err) == -1, &m2, "NULL buf", "-1",
         "other");
  expect(&t, proto_format_command(DMO, &ping, fits, 0, NULL) == -1, &m2, "cap 0", "-1", "other");
  expect(&t, proto_format_command((proto_dialect_t)7, &ping, fits, sizeof fits, &err) == -1, &m2,
         "bad dialect", "-1", "other");
  free(text);
  finish(&t, "format");
}
END_TEST

/* ---- names and direction sets ---------------------------------------------------------------- */

static bool letter_in(const char *set, char c) {
  return strchr(set, c) != NULL;
}

START_TEST(test_directions) {
  tally_t t = {0, 0};
  ck_assert_uint_eq(sizeof direction_rows / sizeof direction_rows[0], PROTO_CMD_COUNT - 1);
  for (size_t i = 0; i < sizeof direction_rows / sizeof direction_rows[0]; i++) {
    const direction_row_t *r = &direction_rows[i];
    for (int d = 0; d < 2; d++) {
      proto_dialect_t dialect = d == 0 ? D18 : DMO;
      const char *set = d == 0 ? r->in_2018 : r->in_modern;
      char id[64];
      snprintf(id, sizeof id, "DS-%s-%s", proto_command_name(r->kind), proto_dialect_name(dialect));
      meta_t m = {id, "who may send each command follows the dialect's allowed sets",
                  "P §2.1 allowed sets"};
      bool in = set[0] != '\0';
      expect(&t, proto_command_in_dialect(dialect, r->kind) == in, &m, "in dialect",
             in ? "yes" : "no", in ? "no" : "yes");
      bool s = letter_in(set, 'S'), cl = letter_in(set, 'C');
      expect(&t, proto_command_allowed(dialect, r->kind, SRV) == s, &m, "server may send",
             s ? "yes" : "no", s ? "no" : "yes");
      expect(&t, proto_command_allowed(dialect, r->kind, CLI) == cl, &m, "client may send",
             cl ? "yes" : "no", cl ? "no" : "yes");
      expect(&t, proto_command_allowed(dialect, r->kind, ANY) == in, &m, "any sender (Redis)",
             in ? "yes" : "no", in ? "no" : "yes");
    }
  }
  meta_t m = {"DS-range", "out-of-range values are never allowed", "proto.h"};
  expect(&t, !proto_command_allowed(DMO, PROTO_CMD_NONE, ANY), &m, "NONE", "no", "yes");
  expect(&t, !proto_command_allowed(DMO, PROTO_CMD_COUNT, ANY), &m, "COUNT", "no", "yes");
  expect(&t, !proto_command_allowed((proto_dialect_t)0, PROTO_CMD_PING, ANY), &m, "dialect 0", "no",
         "yes");
  expect(&t, !proto_command_allowed(DMO, PROTO_CMD_PING, (proto_sender_t)9), &m, "sender 9", "no",
         "yes");
  finish(&t, "directions");
}
END_TEST

START_TEST(test_names) {
  for (int k = PROTO_CMD_NONE + 1; k < PROTO_CMD_COUNT; k++) {
    const char *name = proto_command_name((proto_command_kind_t)k);
    ck_assert_str_ne(name, "?");
    ck_assert_int_eq(proto_command_from_name(name, strlen(name)), k);
    /* A prefix or a lower-case name is not a command (Synapse's map is exact). */
    ck_assert_int_eq(proto_command_from_name(name, strlen(name) - 1), PROTO_CMD_NONE);
    char lower[32];
    size_t n = strlen(name);
    for (size_t i = 0; i < n; i++) lower[i] = (char)tolower((unsigned char)name[i]);
    lower[n] = '\0';
    ck_assert_int_eq(proto_command_from_name(lower, n), PROTO_CMD_NONE);
  }
  ck_assert_str_eq(proto_command_name(PROTO_CMD_NONE), "?");
  ck_assert_str_eq(proto_command_name(PROTO_CMD_COUNT), "?");
  ck_assert_int_eq(proto_command_from_name(NULL, 0), PROTO_CMD_NONE);
  ck_assert_int_eq(proto_command_from_name("", 0), PROTO_CMD_NONE);
  ck_assert_int_eq(proto_command_from_name("RDATAX", 6), PROTO_CMD_NONE);
  ck_assert_int_eq(proto_command_from_name("XXXXXXXXXXXXXXXX", 16), PROTO_CMD_NONE);

  proto_dialect_t d = 0;
  ck_assert_int_eq(proto_dialect_from_name("2018", &d), 0);
  ck_assert_int_eq(d, PROTO_DIALECT_2018);
  ck_assert_int_eq(proto_dialect_from_name("modern", &d), 0);
  ck_assert_int_eq(d, PROTO_DIALECT_MODERN);
  ck_assert_int_eq(proto_dialect_from_name("Modern", &d), -1);
  ck_assert_int_eq(proto_dialect_from_name(NULL, &d), -1);
  ck_assert_str_eq(proto_dialect_name(PROTO_DIALECT_2018), "2018");
  ck_assert_str_eq(proto_dialect_name(PROTO_DIALECT_MODERN), "modern");
  ck_assert_str_eq(proto_dialect_name((proto_dialect_t)5), "?");
}
END_TEST

START_TEST(test_helpers) {
  proto_slice_t s = proto_slice_cstr(NULL);
  ck_assert_uint_eq(s.len, 0);
  ck_assert(proto_slice_eq(s, ""));
  ck_assert(proto_slice_eq(s, NULL));
  s = proto_slice_cstr("events");
  ck_assert(proto_slice_eq(s, "events"));
  ck_assert(!proto_slice_eq(s, "event"));
  ck_assert(!proto_slice_eq(s, "eventsx"));
  char buf[4];
  ck_assert_str_eq(proto_slice_copy(s, buf, sizeof buf), "eve");
  ck_assert_str_eq(proto_slice_copy(proto_slice_cstr("ab"), buf, sizeof buf), "ab");
  ck_assert_ptr_eq(proto_slice_copy(s, buf, 0), buf);
  ck_assert(proto_line_is_blank("", 0));
  ck_assert(proto_line_is_blank(" \t\r\n\v\f", 6));
  ck_assert(!proto_line_is_blank(" x ", 3));
  ck_assert(!proto_line_is_blank("\0", 1));

  /* Robustness: NULL out/err, NULL line, bad enum values. */
  ck_assert_int_eq(proto_parse_line(DMO, SRV, NULL, 5, NULL, NULL), PROTO_ERR_BLANK);
  ck_assert_int_eq(proto_parse_line(DMO, SRV, "PING 1", 6, NULL, NULL), PROTO_OK);
  proto_error_t err;
  ck_assert_int_eq(proto_parse_line((proto_dialect_t)0, SRV, "PING 1", 6, NULL, &err),
                   PROTO_ERR_BAD_FIELD);
  ck_assert_str_eq(err.field, "dialect");
  ck_assert_int_eq(proto_parse_line(DMO, (proto_sender_t)0, "PING 1", 6, NULL, &err),
                   PROTO_ERR_BAD_FIELD);
  ck_assert_str_eq(err.field, "sender");
  ck_assert_int_eq(proto_parse_line(DMO, SRV, "PING 1", 6, NULL, &err), PROTO_OK);
  ck_assert_int_eq(err.code, PROTO_OK);
  ck_assert_str_eq(err.message, "");
}
END_TEST

/* Integers are written two digits at a time (proto_int64_format); the reference is
 * printf's %lld, over the edges of every digit count and pseudo-random values of every
 * magnitude, in a short buffer too (where the writer falls back to a copy). */
START_TEST(test_integer_formatting) {
  tally_t t = {0};
  meta_t m = {"proto-int-format", "integers are written in canonical decimal (proto.h)",
              "printf %lld"};
  int64_t edges[] = {0, 1, -1, 9, 10, 11, 99, 100, 101, -99, -100, INT64_MAX, INT64_MIN,
                     INT64_MAX - 1, INT64_MIN + 1};
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < 200000; i++) {
    int64_t v;
    if (i < (int)(sizeof edges / sizeof edges[0])) {
      v = edges[i];
    } else if (i < 200) {
      /* 10^k - 1, 10^k and their negatives. */
      int64_t p = 1;
      for (int k = 0; k < (i - 15) / 4 % 19; k++) p *= 10;
      v = (i % 4 == 0) ? p - 1 : (i % 4 == 1) ? p : (i % 4 == 2) ? -p : 1 - p;
    } else {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      v = (int64_t)(x >> (x % 64)); /* every magnitude */
      if (x & 1) v = -v;
    }
    char want[96], line[96];
    snprintf(want, sizeof want, "POSITION events master %lld %lld", (long long)v, (long long)v);
    proto_command_t cmd = {.kind = PROTO_CMD_POSITION,
                           .stream = proto_slice_cstr("events"),
                           .instance = proto_slice_cstr("master"),
                           .prev_token = v,
                           .new_token = v};
    /* The exact size, so the last integer does not have 20 bytes of room. */
    int n = proto_format_command(DMO, &cmd, line, strlen(want) + 1, NULL);
    if (!expect_str(&t, &m, "formatted POSITION", n < 0 ? "" : line, n < 0 ? 0 : (size_t)n, want))
      break;
  }
  finish(&t, "integer formatting");
}
END_TEST

/* proto_rdata_write against proto_format_command, its reference: the same return
 * value, bytes and error for every combination of good and refused heads (stream,
 * instance), tokens, 'batch', buffer sizes, and rows mutated from real shapes (most of
 * the mutants are invalid JSON, some are too long). */
START_TEST(test_rdata_writer_matches_format) {
  tally_t t = {0};
  meta_t m = {"proto-rdata-writer", "proto_rdata_write writes what proto_format_command writes",
              "proto.h"};
  static char long_name[300];
  memset(long_name, 's', sizeof long_name - 1);
  const char *streams[] = {"caches", "events", "", "a b", "x\n", "\xff", long_name};
  const char *instances[] = {"master", "", "w 1", "\r"};
  const char *seeds[] = {
      "[\"cs_cache_fake\",[\"!bXzOUdvAFAfcekmnYl:test.local\",\"@alice1:test.local\"],"
      "1795911878001]",
      "[\"ev\",[\"$KVBQIqvvQ9Mq\",\"!room:test.local\",\"m.room.member\",\"@a:t\",null,null,"
      "\"join\",false,false]]",
      "{\"k\": [1, -2.5e3, true, \"\\u00e9\\n\", {}], \"\xc3\xa9\": null}",
      "[]",
      "0",
      "\"x\""};
  static char big_row[PROTO_MAX_LINE + 64];
  int written = 0, refused = 0;
  uint64_t x = 0x2545F4914F6CDD1DULL;
  for (int i = 0; i < 60000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    proto_dialect_t dialect = (x & 1) ? DMO : D18;
    /* Mostly good heads; the others are refused or (the long stream) slow. */
    const char *stream = (x >> 1) % 8 < 6 ? streams[(x >> 4) & 1] : streams[2 + (x >> 4) % 5];
    const char *instance = instances[(x >> 9) % 8 < 6 ? 0 : (x >> 9) % 4];
    char row[600];
    size_t row_len;
    const char *row_ptr = row;
    if ((x >> 12) % 500 == 0) {
      /* Over the line limit (valid JSON: a long string). */
      row_len = PROTO_MAX_LINE - 20 + (x >> 20) % 40;
      memset(big_row, 'a', row_len);
      big_row[0] = '"';
      big_row[row_len - 1] = '"';
      row_ptr = big_row;
    } else {
      const char *seed = seeds[(x >> 12) % 6];
      row_len = strlen(seed);
      memcpy(row, seed, row_len);
      /* Half the rows as they are, half with 1..3 mutations: flip, insert or delete. */
      unsigned mutations = (x >> 16) % 8 < 4 ? 0 : 1 + (unsigned)((x >> 19) % 3);
      for (unsigned k = 0; k < mutations; k++) {
        uint64_t r = x * 0x9E3779B97F4A7C15ULL + k;
        size_t at = row_len ? (size_t)((r >> 8) % row_len) : 0;
        const char bytes[] = "\"\\[]{},: \t0-9eE.+tfnu\x80\xc3\x00\n\r";
        char b = bytes[(r >> 32) % (sizeof bytes - 1)];
        if (r % 3 == 0 && row_len > 0) {
          row[at] = b;
        } else if (r % 3 == 1 && row_len + 1 < sizeof row) {
          memmove(row + at + 1, row + at, row_len - at);
          row[at] = b;
          row_len++;
        } else if (row_len > 0) {
          memmove(row + at, row + at + 1, row_len - at - 1);
          row_len--;
        }
      }
    }
    bool batch = (x >> 40) % 4 == 0;
    int64_t token = (int64_t)(x >> ((x >> 42) % 64));
    if ((x >> 48) & 1) token = -token;
    size_t caps[] = {64, 120, 1, 0};
    size_t cap = PROTO_MAX_LINE + 1;
    if ((x >> 50) % 8 == 6) cap = caps[(x >> 53) % 4];
    if ((x >> 50) % 8 == 7) cap = 30 + (x >> 55) % 120; /* around the line's own length */

    proto_rdata_writer_t writer;
    proto_rdata_writer_init(&writer, dialect, proto_slice_cstr(stream), proto_slice_cstr(instance));
    proto_command_t cmd = {.kind = PROTO_CMD_RDATA,
                           .stream = proto_slice_cstr(stream),
                           .instance = proto_slice_cstr(instance),
                           .token_is_batch = batch,
                           .token = token,
                           .row = {row_ptr, row_len}};
    static char want[PROTO_MAX_LINE + 2], got[PROTO_MAX_LINE + 2];
    memset(want, 'W', cap + 1 < sizeof want ? cap + 1 : sizeof want);
    memset(got, 'W', cap + 1 < sizeof got ? cap + 1 : sizeof got);
    proto_error_t want_err, got_err;
    int want_n = proto_format_command(dialect, &cmd, want, cap, &want_err);
    int got_n = proto_rdata_write(&writer, batch, token, cmd.row, got, cap, &got_err);
    char expected[400], actual[400];
    snprintf(expected, sizeof expected, "%d '%.200s' code %d field %s offset %zu: %.100s", want_n,
             cap ? want : "", (int)want_err.code, want_err.field ? want_err.field : "-",
             want_err.offset, want_err.message);
    snprintf(actual, sizeof actual, "%d '%.200s' code %d field %s offset %zu: %.100s", got_n,
             cap ? got : "", (int)got_err.code, got_err.field ? got_err.field : "-", got_err.offset,
             got_err.message);
    bool same = want_n == got_n && want_err.code == got_err.code &&
                want_err.field == got_err.field && want_err.offset == got_err.offset &&
                strcmp(want_err.message, got_err.message) == 0 &&
                (cap == 0 || strcmp(want, got) == 0);
    if (!expect(&t, same, &m, "proto_rdata_write against proto_format_command", expected, actual))
      break;
    if (want_n >= 0) {
      written++;
    } else {
      refused++;
    }
  }
  printf("rdata writer: %d lines written, %d refused\n", written, refused);
  ck_assert_msg(written > 10000 && refused > 10000, "too one-sided a mix: %d/%d", written, refused);
  finish(&t, "rdata writer");
}
END_TEST

static void add_more_tests(Suite *s) {
  TCase *tc = tcase_create("framing");
  tcase_set_timeout(tc, 300); /* generated-input loops; slow under ASan on a loaded machine */
  tcase_add_test(tc, test_framing_limits);
  tcase_add_test(tc, test_framing_chunked);
  tcase_add_test(tc, test_parse_length_limit);
  tcase_add_test(tc, test_scan_boundaries);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_set_timeout(tc, 300); /* generated-input loops; slow under ASan on a loaded machine */
  tcase_add_test(tc, test_malformed);
  tcase_add_test(tc, test_json);
  tcase_add_test(tc, test_json_against_reference);
  tcase_add_test(tc, test_parse_against_reference);
  tcase_add_test(tc, test_rejection_texts);
  tcase_add_test(tc, test_mutations);
  suite_add_tcase(s, tc);
  tc = tcase_create("format");
  tcase_set_timeout(tc, 300); /* generated-input loops; slow under ASan on a loaded machine */
  tcase_add_test(tc, test_format);
  suite_add_tcase(s, tc);
  tc = tcase_create("names");
  tcase_set_timeout(tc, 300); /* generated-input loops; slow under ASan on a loaded machine */
  tcase_add_test(tc, test_directions);
  tcase_add_test(tc, test_names);
  tcase_add_test(tc, test_helpers);
  tcase_add_test(tc, test_integer_formatting);
  tcase_add_test(tc, test_rdata_writer_matches_format);
  suite_add_tcase(s, tc);
}

static Suite *proto_suite(void) {
  Suite *s = suite_create("proto");
  TCase *tc = tcase_create("examples");
  tcase_set_timeout(tc, 300); /* generated-input loops; slow under ASan on a loaded machine */
  tcase_add_test(tc, test_spec_examples);
  tcase_add_test(tc, test_fields);
  tcase_add_test(tc, test_real_pair_166);
  tcase_add_test(tc, test_real_pair_112);
  suite_add_tcase(s, tc);
  add_more_tests(s);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(proto_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
