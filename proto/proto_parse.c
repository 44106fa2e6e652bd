/* Parsing one line into a proto_command_t: the complete parser, every command and
 * every refusal. proto_parse_line() (proto_parse_fast.c) takes a shorter way for the
 * commonest lines and hands everything else here; what it returns is by contract
 * what this returns.
 *
 * The order of checks follows what a Synapse receiver of each dialect does (spec
 * §1.2), so the error code tells a caller which ERROR (if any) that receiver sends:
 *   both     length, blank, bytes (undecodable lines never reach the command parser)
 *   2018     no space -> dropped; name not in the receiver's set -> invalid command;
 *            then the command's fields
 *   modern   unknown name -> parse failure; the command's fields; then direction
 *
 * Speed: a line is read once. The fields before a JSON value are checked for
 * forbidden bytes by proto_bytes_first_bad(); the JSON value itself by the JSON
 * scanner in line mode, which refuses the same bytes. Only on the error path is the
 * whole line scanned again, so that bad bytes take precedence like in Synapse. */
#include "proto_internal.h"

#include <stdio.h>
#include <string.h>

#define SNIPPET_MAX 48

typedef struct parse_ctx {
  proto_dialect_t dialect;
  const char *line;
  size_t len;
  proto_command_kind_t kind;
  const char *cmd;  /* command name for messages */
  const char *data; /* the data after the first space */
  size_t data_len;
  size_t clean_from; /* bytes from here to the end were already checked (JSON) */
  proto_command_t *out;
  proto_error_t *err;
} parse_ctx_t;

static size_t offset_of(const parse_ctx_t *ctx, const char *p) {
  return (size_t)(p - ctx->line);
}

static proto_error_code_t fail_missing(parse_ctx_t *ctx, const proto_layout_t *layout,
                                       unsigned index) {
  return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->kind, layout->fields[index], ctx->len,
                          "%s: field '%s' is missing (%s %s is '%s %s')", ctx->cmd,
                          layout->fields[index], proto_dialect_name(ctx->dialect), ctx->cmd,
                          ctx->cmd, layout->syntax);
}

static proto_error_code_t fail_value(parse_ctx_t *ctx, const char *field, proto_slice_t got,
                                     const char *expected) {
  char snippet[SNIPPET_MAX + 4];
  proto_snippet(got.ptr, got.len, SNIPPET_MAX, snippet);
  return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->kind, field, offset_of(ctx, got.ptr),
                          "%s: field '%s' must be %s, got '%s'", ctx->cmd, field, expected,
                          snippet);
}

/* Splits like Python's data.split(" ", n - 1): at most n parts, the last one takes the
 * rest of the line. Empty data gives no parts (every field is then missing). The
 * fields are short, so one 16-byte compare usually finds every space at once. */
static inline __attribute__((always_inline)) unsigned split_fields(const char *data, size_t len,
                                                                   unsigned n,
                                                                   proto_slice_t *parts) {
  if (len == 0) return 0;
  unsigned count = 0;
  size_t start = 0;
#if defined(__SSE2__)
  if (len >= 16) {
    const __m128i space = _mm_set1_epi8(' ');
    const char *end = data + len, *field = data, *at = data;
    proto_slice_t *part = parts;
    unsigned want = n > 0 ? n - 1 : 0; /* spaces still to find */
    while (want > 0 && at < end) {
      const char *window = at + 16 <= end ? at : end - 16;
      unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
                          _mm_loadu_si128((const __m128i *)(const void *)window), space)) >>
                      (at - window);
      for (; mask != 0; mask &= mask - 1) {
        const char *sp = at + __builtin_ctz(mask);
        part->ptr = field;
        part->len = (size_t)(sp - field);
        part++;
        field = sp + 1;
        if (--want == 0) break;
      }
      at = window + 16;
    }
    part->ptr = field;
    part->len = (size_t)(end - field);
    return (unsigned)(part - parts) + 1;
  }
#endif
  while (count + 1 < n) {
    const char *space = proto_find_space(data + start, data + len);
    if (space == NULL) break;
    size_t end = (size_t)(space - data);
    parts[count].ptr = data + start;
    parts[count].len = end - start;
    count++;
    start = end + 1;
  }
  parts[count].ptr = data + start;
  parts[count].len = len - start;
  return count + 1;
}

static inline __attribute__((always_inline)) proto_error_code_t take_fields(
    parse_ctx_t *ctx, const proto_layout_t *layout, proto_slice_t *parts) {
  unsigned count = split_fields(ctx->data, ctx->data_len, layout->nfields, parts);
  if (count < layout->nfields) return fail_missing(ctx, layout, count);
  return PROTO_OK;
}

static proto_error_code_t check_word(parse_ctx_t *ctx, const char *field, proto_slice_t s) {
  if (s.len == 0) {
    return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->kind, field, offset_of(ctx, s.ptr),
                            "%s: field '%s' must not be empty (two spaces in a row?)", ctx->cmd,
                            field);
  }
  return PROTO_OK;
}

/* What is wrong with a would-be integer, for the message. */
static const char *integer_expectation(proto_slice_t s, const char *plain) {
  if (s.len > 0 && s.ptr[0] == '+') return "a decimal integer without a '+' sign";
  size_t i = (s.len > 0 && s.ptr[0] == '-') ? 1 : 0;
  bool digits = i < s.len;
  for (size_t k = i; k < s.len; k++) digits = digits && s.ptr[k] >= '0' && s.ptr[k] <= '9';
  if (digits) return "a decimal integer that fits in 64 bits (signed)";
  return plain;
}

static proto_error_code_t fail_integer(parse_ctx_t *ctx, const char *field, proto_slice_t s,
                                       const char *plain, bool last) {
  if (last && memchr(s.ptr, ' ', s.len) != NULL) {
    const proto_layout_t *layout = proto_layout_get(ctx->dialect, ctx->kind);
    char snippet[SNIPPET_MAX + 4];
    proto_snippet(s.ptr, s.len, SNIPPET_MAX, snippet);
    return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->kind, field, offset_of(ctx, s.ptr),
                            "%s: field '%s' must be %s, got '%s' (too many fields: %s %s is "
                            "'%s %s')",
                            ctx->cmd, field, plain, snippet, proto_dialect_name(ctx->dialect),
                            ctx->cmd, ctx->cmd, layout->syntax);
  }
  return fail_value(ctx, field, s, integer_expectation(s, plain));
}

static proto_error_code_t take_integer(parse_ctx_t *ctx, const char *field, proto_slice_t s,
                                       bool last, int64_t *out) {
  if (proto_int64_parse(s.ptr, s.len, out)) return PROTO_OK;
  return fail_integer(ctx, field, s, "a decimal integer", last);
}

/* The refusals of take_json(), out of line so that the accepting path needs no stack
 * frame for their buffers. */
static __attribute__((noinline, cold)) proto_error_code_t fail_json(
    parse_ctx_t *ctx, const char *field, proto_slice_t s, const proto_json_result_t *res) {
  char snippet[SNIPPET_MAX + 4];
  proto_snippet(s.ptr, s.len, SNIPPET_MAX, snippet);
  return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->kind, field,
                          offset_of(ctx, s.ptr) + res->bad_offset,
                          "%s: field '%s' must be valid JSON (%s at byte %zu of the field), "
                          "got '%s'",
                          ctx->cmd, field, res->why, res->bad_offset, snippet);
}

static __attribute__((noinline, cold)) proto_error_code_t fail_json_shape(
    parse_ctx_t *ctx, const char *field, proto_slice_t s, const proto_json_result_t *res,
    const char *shape) {
  char got[48];
  if (res->top == '[') {
    snprintf(got, sizeof got, "an array of %zu item%s", res->top_items,
             res->top_items == 1 ? "" : "s");
  } else {
    snprintf(got, sizeof got, "%s",
             res->top == '{'                        ? "an object"
             : res->top == '"'                      ? "a string"
             : res->top == 'n'                      ? "null"
             : (res->top == 't' || res->top == 'f') ? "a boolean"
                                                    : "a number");
  }
  return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->kind, field, offset_of(ctx, s.ptr),
                          "%s: field '%s' must be %s, got %s", ctx->cmd, field, shape, got);
}

/* `items` > 0: the value must be an array of exactly that many elements. */
static inline proto_error_code_t take_json(parse_ctx_t *ctx, const char *field, proto_slice_t s,
                                           size_t items, const char *shape) {
  proto_json_result_t res;
  if (!proto_json_check(s.ptr, s.len, true, &res)) return fail_json(ctx, field, s, &res);
  if (items > 0 && (res.top != '[' || res.top_items != items))
    return fail_json_shape(ctx, field, s, &res, shape);
  ctx->clean_from = offset_of(ctx, s.ptr);
  return PROTO_OK;
}

static proto_error_code_t take_state(parse_ctx_t *ctx, proto_slice_t s) {
  if (s.len == 5 && memcmp(s.ptr, "start", 5) == 0) {
    ctx->out->sync_start = true;
    return PROTO_OK;
  }
  if (s.len == 3 && memcmp(s.ptr, "end", 3) == 0) {
    ctx->out->sync_start = false;
    return PROTO_OK;
  }
  return fail_value(ctx, "state", s, "'start' or 'end'");
}

/* ---- per command ------------------------------------------------------------------ */

static proto_error_code_t parse_rdata(parse_ctx_t *ctx, const proto_layout_t *layout) {
  proto_slice_t f[4];
  proto_error_code_t rc = take_fields(ctx, layout, f);
  if (rc != PROTO_OK) return rc;
  proto_command_t *out = ctx->out;
  unsigned i = 0;
  out->stream = f[i++];
  if ((rc = check_word(ctx, "stream", out->stream)) != PROTO_OK) return rc;
  if (ctx->dialect == PROTO_DIALECT_MODERN) {
    out->instance = f[i++];
    if ((rc = check_word(ctx, "instance", out->instance)) != PROTO_OK) return rc;
  }
  proto_slice_t token = f[i++];
  if (token.len == 5 && memcmp(token.ptr, "batch", 5) == 0) {
    out->token_is_batch = true;
  } else if (!proto_int64_parse(token.ptr, token.len, &out->token)) {
    return fail_value(ctx, "token", token,
                      token.len > 0 && token.ptr[0] == '+'
                          ? "a decimal integer (without '+') or 'batch'"
                          : "a decimal integer or 'batch'");
  }
  out->row = f[i];
  return take_json(ctx, "row", out->row, 0, NULL);
}

static proto_error_code_t parse_position(parse_ctx_t *ctx, const proto_layout_t *layout) {
  proto_slice_t f[4];
  proto_error_code_t rc = take_fields(ctx, layout, f);
  if (rc != PROTO_OK) return rc;
  proto_command_t *out = ctx->out;
  out->stream = f[0];
  if ((rc = check_word(ctx, "stream", out->stream)) != PROTO_OK) return rc;
  if (ctx->dialect == PROTO_DIALECT_2018)
    return take_integer(ctx, "token", f[1], true, &out->token);
  out->instance = f[1];
  if ((rc = check_word(ctx, "instance", out->instance)) != PROTO_OK) return rc;
  if ((rc = take_integer(ctx, "prev_token", f[2], false, &out->prev_token)) != PROTO_OK) {
    return rc;
  }
  return take_integer(ctx, "new_token", f[3], true, &out->new_token);
}

static proto_error_code_t parse_replicate(parse_ctx_t *ctx, const proto_layout_t *layout) {
  /* Modern REPLICATE ignores its data (a 2018 "REPLICATE events 53" is accepted). */
  if (ctx->dialect == PROTO_DIALECT_MODERN) return PROTO_OK;
  proto_slice_t f[2];
  proto_error_code_t rc = take_fields(ctx, layout, f);
  if (rc != PROTO_OK) return rc;
  proto_command_t *out = ctx->out;
  out->stream = f[0];
  if ((rc = check_word(ctx, "stream", out->stream)) != PROTO_OK) return rc;
  if ((f[1].len == 3 && (memcmp(f[1].ptr, "NOW", 3) == 0 || memcmp(f[1].ptr, "now", 3) == 0))) {
    out->token_is_now = true;
    return PROTO_OK;
  }
  if (proto_int64_parse(f[1].ptr, f[1].len, &out->token)) return PROTO_OK;
  return fail_integer(ctx, "token", f[1], "a decimal integer, 'NOW' or 'now'", true);
}

static proto_error_code_t parse_user_sync(parse_ctx_t *ctx, const proto_layout_t *layout) {
  proto_command_t *out = ctx->out;
  proto_slice_t f[5];
  proto_error_code_t rc;
  unsigned i = 0;
  if (ctx->dialect == PROTO_DIALECT_MODERN) {
    /* Three spaces: the v1.13-v1.91 form without a device id; more: the v1.92+ form. */
    size_t spaces = 0;
    for (size_t k = 0; k < ctx->data_len && spaces < 4; k++) spaces += ctx->data[k] == ' ';
    if (spaces < 4) layout = &proto_layout_modern_user_sync_4;
    if ((rc = take_fields(ctx, layout, f)) != PROTO_OK) return rc;
    out->instance = f[i++];
    if ((rc = check_word(ctx, "instance", out->instance)) != PROTO_OK) return rc;
    out->user_id = f[i++];
    if ((rc = check_word(ctx, "user_id", out->user_id)) != PROTO_OK) return rc;
    if (layout->nfields == 5) {
      out->has_device_id = true;
      out->device_id = f[i++];
      if ((rc = check_word(ctx, "device_id", out->device_id)) != PROTO_OK) return rc;
    }
  } else {
    if ((rc = take_fields(ctx, layout, f)) != PROTO_OK) return rc;
    out->user_id = f[i++];
    if ((rc = check_word(ctx, "user_id", out->user_id)) != PROTO_OK) return rc;
  }
  if ((rc = take_state(ctx, f[i++])) != PROTO_OK) return rc;
  return take_integer(ctx, "last_sync_ms", f[i], true, &out->last_sync_ms);
}

static proto_error_code_t parse_federation_ack(parse_ctx_t *ctx, const proto_layout_t *layout) {
  proto_slice_t f[2];
  proto_error_code_t rc = take_fields(ctx, layout, f);
  if (rc != PROTO_OK) return rc;
  proto_command_t *out = ctx->out;
  if (ctx->dialect == PROTO_DIALECT_2018)
    return take_integer(ctx, "token", f[0], true, &out->token);
  out->instance = f[0];
  if ((rc = check_word(ctx, "instance", out->instance)) != PROTO_OK) return rc;
  return take_integer(ctx, "token", f[1], true, &out->token);
}

static proto_error_code_t parse_remove_pusher(parse_ctx_t *ctx, const proto_layout_t *layout) {
  proto_slice_t f[3];
  proto_error_code_t rc = take_fields(ctx, layout, f);
  if (rc != PROTO_OK) return rc;
  proto_command_t *out = ctx->out;
  out->app_id = f[0];
  out->push_key = f[1];
  out->user_id = f[2];
  if ((rc = check_word(ctx, "app_id", out->app_id)) != PROTO_OK) return rc;
  if ((rc = check_word(ctx, "push_key", out->push_key)) != PROTO_OK) return rc;
  return check_word(ctx, "user_id", out->user_id);
}

static proto_error_code_t parse_invalidate_cache(parse_ctx_t *ctx, const proto_layout_t *layout) {
  proto_slice_t f[2];
  proto_error_code_t rc = take_fields(ctx, layout, f);
  if (rc != PROTO_OK) return rc;
  ctx->out->cache_func = f[0];
  if ((rc = check_word(ctx, "cache_func", f[0])) != PROTO_OK) return rc;
  ctx->out->row = f[1];
  return take_json(ctx, "keys", f[1], 0, NULL);
}

static proto_error_code_t parse_user_ip(parse_ctx_t *ctx, const proto_layout_t *layout) {
  proto_slice_t f[2];
  proto_error_code_t rc = take_fields(ctx, layout, f);
  if (rc != PROTO_OK) return rc;
  ctx->out->user_id = f[0];
  if ((rc = check_word(ctx, "user_id", f[0])) != PROTO_OK) return rc;
  ctx->out->row = f[1];
  /* Synapse unpacks exactly five values from it in from_line. */
  return take_json(ctx, "row", f[1], 5,
                   "a JSON array of 5 items [access_token, ip, user_agent, device_id, "
                   "last_seen_ms]");
}

static proto_error_code_t parse_lock_released(parse_ctx_t *ctx, const proto_layout_t *layout) {
  proto_slice_t f[1];
  proto_error_code_t rc = take_fields(ctx, layout, f);
  if (rc != PROTO_OK) return rc;
  ctx->out->row = f[0];
  return take_json(ctx, "row", f[0], 3, "a JSON array of 3 items [instance, lock_name, lock_key]");
}

static proto_error_code_t parse_clear_user_sync(parse_ctx_t *ctx, const proto_layout_t *layout) {
  proto_slice_t f[1];
  proto_error_code_t rc = take_fields(ctx, layout, f);
  if (rc != PROTO_OK) return rc;
  ctx->out->instance = f[0];
  return PROTO_OK;
}

static proto_error_code_t parse_fields(parse_ctx_t *ctx) {
  /* The caller checked that the dialect has the command: no second check here. */
  const proto_layout_t *layout = &proto_layouts[ctx->dialect][ctx->kind];
  switch (ctx->kind) {
    case PROTO_CMD_RDATA:
      return parse_rdata(ctx, layout);
    case PROTO_CMD_POSITION:
      return parse_position(ctx, layout);
    case PROTO_CMD_REPLICATE:
      return parse_replicate(ctx, layout);
    case PROTO_CMD_USER_SYNC:
      return parse_user_sync(ctx, layout);
    case PROTO_CMD_CLEAR_USER_SYNC:
      return parse_clear_user_sync(ctx, layout);
    case PROTO_CMD_FEDERATION_ACK:
      return parse_federation_ack(ctx, layout);
    case PROTO_CMD_REMOVE_PUSHER:
      return parse_remove_pusher(ctx, layout);
    case PROTO_CMD_INVALIDATE_CACHE:
      return parse_invalidate_cache(ctx, layout);
    case PROTO_CMD_USER_IP:
      return parse_user_ip(ctx, layout);
    case PROTO_CMD_LOCK_RELEASED:
      return parse_lock_released(ctx, layout);
    default:
      /* Free text: SERVER, PING, ERROR, NAME, SYNC, REMOTE_SERVER_UP, task ids.
       * Synapse's from_line keeps the data as is, empty included. */
      ctx->out->text.ptr = ctx->data;
      ctx->out->text.len = ctx->data_len;
      return PROTO_OK;
  }
}

/* ---- bad bytes ---------------------------------------------------------------------- */

static proto_error_code_t fail_bytes(parse_ctx_t *ctx, size_t at, size_t name_len) {
  const unsigned char c = (unsigned char)ctx->line[at];
  char what[64];
  if (c == 0) {
    snprintf(what, sizeof what, "a NUL byte");
  } else if (c == '\r') {
    snprintf(what, sizeof what, "a CR (only LF ends a line; CR may not appear in one)");
  } else if (c == '\n') {
    snprintf(what, sizeof what, "a LF (a line may not contain one)");
  } else {
    snprintf(what, sizeof what, "ill-formed UTF-8 (byte 0x%02x)", c);
  }
  const char *field = "name";
  if (at > name_len) {
    field = ctx->kind != PROTO_CMD_NONE ? proto_layout_field_at(ctx->dialect, ctx->kind, ctx->data,
                                                                ctx->data_len, at - name_len - 1)
                                        : "data";
  }
  char cmd[SNIPPET_MAX + 4];
  proto_snippet(ctx->line, name_len, SNIPPET_MAX, cmd);
  return proto_error_fill(ctx->err, PROTO_ERR_BAD_BYTES, ctx->kind, field, at,
                          "%s: field '%s' must be valid UTF-8 without NUL, CR or LF, got %s "
                          "at byte %zu",
                          ctx->kind != PROTO_CMD_NONE ? ctx->cmd : cmd, field, what, at);
}

/* ---- entry point -------------------------------------------------------------------- */

proto_error_code_t proto_parse_line_reference(proto_dialect_t dialect, proto_sender_t sender,
                                              const char *line, size_t len, proto_command_t *out,
                                              proto_error_t *err) {
  proto_command_t scratch;
  if (out == NULL) out = &scratch;
  proto_command_zero(out);
  if (line == NULL) {
    line = "";
    len = 0;
  }
  proto_error_clear(err);
  if (dialect != PROTO_DIALECT_2018 && dialect != PROTO_DIALECT_MODERN) {
    return proto_error_fill(err, PROTO_ERR_BAD_FIELD, PROTO_CMD_NONE, "dialect", 0,
                            "parse: dialect %d is neither PROTO_DIALECT_2018 nor "
                            "PROTO_DIALECT_MODERN",
                            (int)dialect);
  }
  if (sender != PROTO_SENDER_SERVER && sender != PROTO_SENDER_CLIENT &&
      sender != PROTO_SENDER_ANY) {
    return proto_error_fill(err, PROTO_ERR_BAD_FIELD, PROTO_CMD_NONE, "sender", 0,
                            "parse: sender %d is not a proto_sender_t", (int)sender);
  }
  if (len > PROTO_MAX_LINE) {
    return proto_error_fill(err, PROTO_ERR_TOO_LONG, PROTO_CMD_NONE, "line", PROTO_MAX_LINE,
                            "line: field 'line' must be at most %d bytes (without the LF), "
                            "got %zu bytes",
                            PROTO_MAX_LINE, len);
  }
  /* Most lines start with a letter: only look further when the first byte is blank. */
  if (len == 0 || ((unsigned char)line[0] <= ' ' && proto_line_is_blank(line, len))) {
    return proto_error_fill(err, PROTO_ERR_BLANK, PROTO_CMD_NONE, "line", 0,
                            "line: field 'line' must hold a command, got a blank line");
  }

  const char *space = proto_find_space(line, line + len);
  size_t name_len = space != NULL ? (size_t)(space - line) : len;
  parse_ctx_t ctx = {
      .dialect = dialect,
      .line = line,
      .len = len,
      .kind = proto_command_from_name(line, name_len),
      .data = space != NULL ? space + 1 : line + len,
      .data_len = space != NULL ? len - name_len - 1 : 0,
      .clean_from = len,
      .out = out,
      .err = err,
  };
  /* dialect and sender were checked above and kind < PROTO_CMD_COUNT: the sets are
   * read directly (PROTO_CMD_NONE is in none of them). */
  const unsigned *sets = proto_direction_sets[dialect];
  if (((sets[PROTO_SENDER_ANY] >> (unsigned)ctx.kind) & 1u) == 0) ctx.kind = PROTO_CMD_NONE;
  ctx.cmd = proto_command_name(ctx.kind);
  out->name.ptr = line;
  out->name.len = name_len;
  out->data.ptr = ctx.data;
  out->data.len = ctx.data_len;
  out->trailing_space = space != NULL && ctx.data_len == 0;

  proto_error_code_t rc;
  char snippet[SNIPPET_MAX + 4];
  if (dialect == PROTO_DIALECT_2018 && space == NULL) {
    /* Synapse 2018 does line.split(" ", 1) unguarded: the reader raises and Twisted
     * drops the connection before the name is even looked at. */
    proto_snippet(line, name_len, SNIPPET_MAX, snippet);
    rc = proto_error_fill(err, PROTO_ERR_BAD_FIELD, ctx.kind, "data", len,
                          "%s: field 'data' is missing (2018 lines are '<NAME> <data>'; a "
                          "line without a space is refused)",
                          snippet);
  } else if (ctx.kind == PROTO_CMD_NONE) {
    proto_snippet(line, name_len, SNIPPET_MAX, snippet);
    rc = proto_error_fill(err, PROTO_ERR_UNKNOWN_COMMAND, PROTO_CMD_NONE, "name", 0,
                          "%s: field 'name' must be a command of the %s dialect, got '%s'", snippet,
                          proto_dialect_name(dialect), snippet);
  } else if (dialect == PROTO_DIALECT_2018 && !proto_kind_allowed(dialect, ctx.kind, sender)) {
    rc = PROTO_ERR_WRONG_DIRECTION;
  } else {
    rc = parse_fields(&ctx);
    if (rc == PROTO_OK) {
      size_t bad = proto_bytes_first_bad_inline(line, ctx.clean_from);
      if (bad < ctx.clean_from) return fail_bytes(&ctx, bad, name_len);
      if (((sets[sender] >> (unsigned)ctx.kind) & 1u) == 0) {
        rc = PROTO_ERR_WRONG_DIRECTION;
      } else {
        out->kind = ctx.kind;
        return PROTO_OK;
      }
    }
  }

  /* Error path: an undecodable line never gets as far as the check that failed. */
  size_t bad = proto_bytes_first_bad(line, len);
  if (bad < len) return fail_bytes(&ctx, bad, name_len);
  if (rc == PROTO_ERR_WRONG_DIRECTION) {
    const char *who = sender == PROTO_SENDER_SERVER ? "server" : "client";
    const char *only = proto_kind_allowed(dialect, ctx.kind, PROTO_SENDER_SERVER)
                           ? "the server only"
                       : proto_kind_allowed(dialect, ctx.kind, PROTO_SENDER_CLIENT)
                           ? "the client only"
                           : "nobody over TCP (Redis only)";
    return proto_error_fill(err, PROTO_ERR_WRONG_DIRECTION, ctx.kind, "name", 0,
                            "%s: field 'name' must be a command the %s may send in the %s "
                            "dialect; %s is sent by %s",
                            ctx.cmd, who, proto_dialect_name(dialect), ctx.cmd, only);
  }
  return rc;
}
