/* Fuzz target: the protocol codec (proto.h). The input is a byte stream as a peer would
 * send it: it is framed with proto_frame_next(), every line is parsed in both dialects
 * from every sender, refusals get their ERROR text, and every accepted line is written
 * back with proto_format_command() and parsed again, which must give the same command.
 * Every line is also written as the row of an RDATA by proto_rdata_write(), which must
 * give what proto_format_command() gives (bytes, result, error). Also the whole input
 * through proto_json_valid(). Every line and the whole input are also checked as JSON
 * against the plain reference validator in tests/json_reference.h (verdict, offset and
 * reason, in both modes, and the parser's short way for rows), and every parse of a
 * line is compared with the complete parser (proto_parse_line_reference: result,
 * every command and error field). Crashes, sanitizer reports and broken invariants (abort) are
 * findings.
 *
 * Built with libFuzzer when REPLCHECK_FUZZ=ON (clang); tests/test_fuzz_corpora.c calls
 * the same entry (FUZZ_ENTRY) on the seed corpus and on every past finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_reference.h"
#include "proto.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void broken(const char *what, const char *line, size_t len) {
  fprintf(stderr, "fuzz_proto: invariant broken: %s; line (%zu bytes): '%.*s'\n", what, len,
          (int)(len > 300 ? 300 : len), line);
  abort();
}

static void slice_inside(proto_slice_t s, const char *line, size_t len) {
  if (s.len == 0) return;
  if (s.ptr < line || s.ptr + s.len > line + len) broken("a slice points outside the line", line, len);
}

static bool slices_equal(proto_slice_t a, proto_slice_t b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The fields a command carries, compared after a format/parse round trip. */
static bool same_command(const proto_command_t *a, const proto_command_t *b) {
  return a->kind == b->kind && slices_equal(a->text, b->text) &&
         slices_equal(a->stream, b->stream) && slices_equal(a->instance, b->instance) &&
         slices_equal(a->row, b->row) && slices_equal(a->user_id, b->user_id) &&
         slices_equal(a->device_id, b->device_id) && slices_equal(a->app_id, b->app_id) &&
         slices_equal(a->push_key, b->push_key) && slices_equal(a->cache_func, b->cache_func) &&
         a->token_is_batch == b->token_is_batch && a->token_is_now == b->token_is_now &&
         a->has_device_id == b->has_device_id && a->sync_start == b->sync_start &&
         a->token == b->token && a->prev_token == b->prev_token &&
         a->new_token == b->new_token && a->last_sync_ms == b->last_sync_ms;
}

static void check_line(proto_dialect_t dialect, proto_sender_t sender, const char *line,
                       size_t len) {
  char diff[900];
  if (pref_compare(dialect, sender, line, len, diff, sizeof diff) != NULL) broken(diff, line, len);
  proto_command_t cmd;
  proto_error_t err;
  proto_error_code_t rc = proto_parse_line(dialect, sender, line, len, &cmd, &err);
  if (memchr(err.message, '\0', sizeof err.message) == NULL)
    broken("error message not NUL-terminated", line, len);
  if (rc != PROTO_OK) {
    if (err.code != rc) broken("err.code differs from the result", line, len);
    static char text[PROTO_MAX_LINE + 1];
    size_t n = proto_rejection_text(dialect, line, len, &err, text, sizeof text);
    if (n >= sizeof text || text[n] != '\0' || strlen(text) != n)
      broken("rejection text not a NUL-terminated string of the returned length", line, len);
    if (n > 0 && n + 6 > PROTO_MAX_LINE) broken("'ERROR <text>' exceeds the line limit", line, len);
    return;
  }
  if (len > PROTO_MAX_LINE) broken("an over-long line was accepted", line, len);
  proto_slice_t slices[] = {cmd.name, cmd.data, cmd.text, cmd.stream, cmd.instance, cmd.row,
                            cmd.user_id, cmd.device_id, cmd.app_id, cmd.push_key, cmd.cache_func};
  for (size_t i = 0; i < sizeof slices / sizeof slices[0]; i++) slice_inside(slices[i], line, len);
  static char out[PROTO_MAX_LINE + 1];
  proto_error_t ferr;
  int n = proto_format_command(dialect, &cmd, out, sizeof out, &ferr);
  if (n < 0) return; /* e.g. a canonical form the limit no longer allows */
  if ((size_t)n != strlen(out)) broken("formatted length differs from the string", line, len);
  proto_command_t again;
  if (proto_parse_line(dialect, sender, out, (size_t)n, &again, &err) != PROTO_OK) {
    fprintf(stderr, "fuzz_proto: formatted as '%.300s': %s\n", out, err.message);
    broken("an accepted line, written back, does not parse", line, len);
  }
  if (!same_command(&cmd, &again)) {
    fprintf(stderr, "fuzz_proto: formatted as '%.300s'\n", out);
    broken("an accepted line, written back and parsed, is another command", line, len);
  }
}

/* The line as an RDATA row: the bulk writer against proto_format_command. */
static void check_rdata_writer(proto_dialect_t dialect, const char *line, size_t len) {
  proto_rdata_writer_t writer;
  proto_rdata_writer_init(&writer, dialect, proto_slice_cstr("caches"), proto_slice_cstr("master"));
  bool batch = len > 0 && (line[0] & 1);
  int64_t token = (int64_t)len * 7919 - 1000;
  proto_command_t cmd = {.kind = PROTO_CMD_RDATA,
                         .stream = proto_slice_cstr("caches"),
                         .instance = proto_slice_cstr("master"),
                         .token_is_batch = batch,
                         .token = token,
                         .row = {line, len}};
  static char want[PROTO_MAX_LINE + 1], got[PROTO_MAX_LINE + 1];
  proto_error_t want_err, got_err;
  int want_n = proto_format_command(dialect, &cmd, want, sizeof want, &want_err);
  int got_n = proto_rdata_write(&writer, batch, token, cmd.row, got, sizeof got, &got_err);
  if (want_n != got_n || strcmp(want, got) != 0 || want_err.code != got_err.code ||
      strcmp(want_err.message, got_err.message) != 0 || want_err.offset != got_err.offset)
    broken("proto_rdata_write differs from proto_format_command", line, len);
}

static void check_all(const char *line, size_t len) {
  static const proto_dialect_t dialects[] = {PROTO_DIALECT_2018, PROTO_DIALECT_MODERN};
  static const proto_sender_t senders[] = {PROTO_SENDER_SERVER, PROTO_SENDER_CLIENT,
                                           PROTO_SENDER_ANY};
  for (size_t d = 0; d < 2; d++) {
    for (size_t s = 0; s < 3; s++) check_line(dialects[d], senders[s], line, len);
    check_rdata_writer(dialects[d], line, len);
  }
  char diff[700];
  if (jref_compare(line, len, diff, sizeof diff) != NULL) broken(diff, line, len);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
  const char *buf = (const char *)data;
  size_t at = 0;
  while (at < size) {
    size_t line_len = 1, consumed = 1;
    proto_frame_status_t st = proto_frame_next(buf + at, size - at, &line_len, &consumed);
    if (st != PROTO_FRAME_LINE) {
      if (line_len != 0 || consumed != 0) broken("no line but non-zero lengths", buf + at, size - at);
      const char *lf = memchr(buf + at, '\n', size - at);
      if (st == PROTO_FRAME_NEED_MORE && (lf != NULL || size - at > PROTO_MAX_LINE))
        broken("NEED_MORE with a LF or over the limit", buf + at, size - at);
      if (st == PROTO_FRAME_TOO_LONG && lf != NULL && (size_t)(lf - (buf + at)) <= PROTO_MAX_LINE)
        broken("TOO_LONG for a line within the limit", buf + at, size - at);
      break;
    }
    if (consumed != line_len + 1 || line_len > PROTO_MAX_LINE || buf[at + line_len] != '\n' ||
        memchr(buf + at, '\n', line_len) != NULL)
      broken("a framed line is not the bytes up to the first LF", buf + at, size - at);
    check_all(buf + at, line_len);
    at += consumed;
  }
  /* The whole input as one line too (LFs inside must be refused). */
  if (size <= PROTO_MAX_LINE + 2) check_all(buf, size);
  char diff[700];
  if (jref_compare(buf, size, diff, sizeof diff) != NULL) broken(diff, buf, size);
  return 0;
}
