/* Unit tests of rc_proto, the replication protocol codec.
 *
 * Table-driven: the cases are in test_proto_cases.h; the real Synapse transcripts and
 * the spec's fenced examples are read at test time from REPLCHECK_SHARED_DIR. Every
 * check that fails prints its id, Requirement, Source, Expected and Actual, and a test
 * runs all its rows before failing so one run shows every broken row. */
#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  if (p == NULL) return "(null)";
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

static const char *show_cstr(const char *s) { return s == NULL ? "(null)" : show(s, strlen(s)); }

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
    case PROTO_OK: return "PROTO_OK";
    case PROTO_ERR_BLANK: return "PROTO_ERR_BLANK";
    case PROTO_ERR_TOO_LONG: return "PROTO_ERR_TOO_LONG";
    case PROTO_ERR_BAD_BYTES: return "PROTO_ERR_BAD_BYTES";
    case PROTO_ERR_UNKNOWN_COMMAND: return "PROTO_ERR_UNKNOWN_COMMAND";
    case PROTO_ERR_WRONG_DIRECTION: return "PROTO_ERR_WRONG_DIRECTION";
    case PROTO_ERR_BAD_FIELD: return "PROTO_ERR_BAD_FIELD";
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
    case PROTO_CMD_CLEAR_USER_SYNC: sb_slice(&b, "instance", c->instance); break;
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
    case PROTO_CMD_LOCK_RELEASED: sb_slice(&b, "row", c->row); break;
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
  expect(t, strcmp(first, second) == 0, m, "parse(format(cmd)) has the same fields", first,
         second);
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
                "%s: expected lines both ways, got %zu from the worker and %zu from the main",
                rel, from_client, from_server);
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

/* MORE_TESTS */

static Suite *proto_suite(void) {
  Suite *s = suite_create("proto");
  TCase *tc = tcase_create("examples");
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
