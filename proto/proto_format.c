/* Writing one command as "<NAME> <data>". Every field is checked so that whatever
 * this writes parses back to the same command in the same dialect: no forbidden bytes,
 * no spaces inside a field that a space would split, no empty fields, valid JSON. */
#include "proto_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct writer {
  char *buf;
  size_t limit; /* most bytes we may write (without the NUL) */
  size_t len;   /* bytes the line needs, even past the limit */
} writer_t;

static inline void put(writer_t *w, const char *p, size_t n) {
  if (w->len + n <= w->limit && n > 0) memcpy(w->buf + w->len, p, n);
  w->len += n;
}

/* A store, not a one-byte memcpy call: a line is written with several of these. */
static inline void put_char(writer_t *w, char c) {
  if (w->len < w->limit) w->buf[w->len] = c;
  w->len++;
}

static inline void put_int(writer_t *w, int64_t v) {
  if (w->limit - (w->len < w->limit ? w->len : w->limit) >= 20) {
    w->len += proto_int64_format(v, w->buf + w->len);
    return;
  }
  char digits[24];
  put(w, digits, proto_int64_format(v, digits));
}

typedef struct format_ctx {
  proto_dialect_t dialect;
  const proto_command_t *cmd;
  const char *name;
  proto_error_t *err;
} format_ctx_t;

enum {
  FIELD_MAY_BE_EMPTY = 1,
  FIELD_MAY_HAVE_SPACES = 2,
};

static proto_error_code_t check_field(const format_ctx_t *ctx, const char *field, proto_slice_t s,
                                      unsigned flags) {
  if (s.ptr == NULL && s.len > 0) {
    return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->cmd->kind, field, 0,
                            "%s: field '%s' has a NULL pointer and length %zu", ctx->name, field,
                            s.len);
  }
  if (s.len == 0) {
    if (flags & FIELD_MAY_BE_EMPTY) return PROTO_OK;
    return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->cmd->kind, field, 0,
                            "%s: field '%s' must not be empty", ctx->name, field);
  }
  /* Identifiers (stream, instance) are a few plain ASCII bytes: one loop that finds
   * neither a byte below 0x0E, a space nor a non-ASCII byte settles the field. */
  if (s.len <= 32) {
    bool plain = true;
    for (size_t i = 0; i < s.len; i++) {
      unsigned char c = (unsigned char)s.ptr[i];
      plain &= c >= 0x0E && c < 0x80 && (c != ' ' || (flags & FIELD_MAY_HAVE_SPACES));
    }
    if (plain) return PROTO_OK;
  }
  size_t bad = proto_bytes_first_bad(s.ptr, s.len);
  if (bad < s.len) {
    unsigned char c = (unsigned char)s.ptr[bad];
    return proto_error_fill(ctx->err, PROTO_ERR_BAD_BYTES, ctx->cmd->kind, field, bad,
                            "%s: field '%s' must be valid UTF-8 without NUL, CR or LF, got %s "
                            "at byte %zu of the field",
                            ctx->name, field,
                            c == '\n'   ? "a newline"
                            : c == '\r' ? "a CR"
                            : c == 0    ? "a NUL byte"
                                        : "ill-formed UTF-8",
                            bad);
  }
  if (!(flags & FIELD_MAY_HAVE_SPACES)) {
    const char *space = memchr(s.ptr, ' ', s.len);
    if (space != NULL) {
      return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->cmd->kind, field,
                              (size_t)(space - s.ptr),
                              "%s: field '%s' must not contain a space (it would split the "
                              "field), got one at byte %zu of the field",
                              ctx->name, field, (size_t)(space - s.ptr));
    }
  }
  return PROTO_OK;
}

static proto_error_code_t check_json(const format_ctx_t *ctx, const char *field, proto_slice_t s,
                                     size_t items, const char *shape) {
  if (s.ptr == NULL && s.len > 0) return check_field(ctx, field, s, 0);
  proto_json_result_t res;
  if (!proto_json_check(s.ptr, s.len, true, &res)) {
    size_t bad = proto_bytes_first_bad(s.ptr, s.len);
    if (bad < s.len) return check_field(ctx, field, s, FIELD_MAY_HAVE_SPACES);
    return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->cmd->kind, field, res.bad_offset,
                            "%s: field '%s' must be valid JSON (%s at byte %zu of the field)",
                            ctx->name, field, res.why, res.bad_offset);
  }
  if (items > 0 && (res.top != '[' || res.top_items != items)) {
    return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, ctx->cmd->kind, field, 0,
                            "%s: field '%s' must be %s", ctx->name, field, shape);
  }
  return PROTO_OK;
}

#define CHECK(expr)                  \
  do {                               \
    proto_error_code_t rc_ = (expr); \
    if (rc_ != PROTO_OK) return rc_; \
  } while (0)

static proto_error_code_t write_data(const format_ctx_t *ctx, writer_t *w) {
  const proto_command_t *c = ctx->cmd;
  bool modern = ctx->dialect == PROTO_DIALECT_MODERN;
  switch (c->kind) {
    case PROTO_CMD_RDATA:
      CHECK(check_field(ctx, "stream", c->stream, 0));
      if (modern) CHECK(check_field(ctx, "instance", c->instance, 0));
      CHECK(check_json(ctx, "row", c->row, 0, NULL));
      put_char(w, ' ');
      put(w, c->stream.ptr, c->stream.len);
      if (modern) {
        put_char(w, ' ');
        put(w, c->instance.ptr, c->instance.len);
      }
      put_char(w, ' ');
      if (c->token_is_batch) {
        put(w, "batch", 5);
      } else {
        put_int(w, c->token);
      }
      put_char(w, ' ');
      put(w, c->row.ptr, c->row.len);
      return PROTO_OK;
    case PROTO_CMD_POSITION:
      CHECK(check_field(ctx, "stream", c->stream, 0));
      put_char(w, ' ');
      put(w, c->stream.ptr, c->stream.len);
      if (!modern) {
        put_char(w, ' ');
        put_int(w, c->token);
        return PROTO_OK;
      }
      CHECK(check_field(ctx, "instance", c->instance, 0));
      put_char(w, ' ');
      put(w, c->instance.ptr, c->instance.len);
      put_char(w, ' ');
      put_int(w, c->prev_token);
      put_char(w, ' ');
      put_int(w, c->new_token);
      return PROTO_OK;
    case PROTO_CMD_REPLICATE:
      if (modern) {
        if (c->trailing_space) put_char(w, ' ');
        return PROTO_OK;
      }
      CHECK(check_field(ctx, "stream", c->stream, 0));
      put_char(w, ' ');
      put(w, c->stream.ptr, c->stream.len);
      put_char(w, ' ');
      if (c->token_is_now) {
        put(w, "NOW", 3);
      } else {
        put_int(w, c->token);
      }
      return PROTO_OK;
    case PROTO_CMD_USER_SYNC:
      if (modern) CHECK(check_field(ctx, "instance", c->instance, 0));
      CHECK(check_field(ctx, "user_id", c->user_id, 0));
      if (modern && c->has_device_id) CHECK(check_field(ctx, "device_id", c->device_id, 0));
      if (modern) {
        put_char(w, ' ');
        put(w, c->instance.ptr, c->instance.len);
      }
      put_char(w, ' ');
      put(w, c->user_id.ptr, c->user_id.len);
      if (modern && c->has_device_id) {
        put_char(w, ' ');
        put(w, c->device_id.ptr, c->device_id.len);
      }
      put(w, c->sync_start ? " start " : " end ", c->sync_start ? 7 : 5);
      put_int(w, c->last_sync_ms);
      return PROTO_OK;
    case PROTO_CMD_CLEAR_USER_SYNC:
      CHECK(check_field(ctx, "instance", c->instance, FIELD_MAY_HAVE_SPACES));
      put_char(w, ' ');
      put(w, c->instance.ptr, c->instance.len);
      return PROTO_OK;
    case PROTO_CMD_FEDERATION_ACK:
      if (modern) {
        CHECK(check_field(ctx, "instance", c->instance, 0));
        put_char(w, ' ');
        put(w, c->instance.ptr, c->instance.len);
      }
      put_char(w, ' ');
      put_int(w, c->token);
      return PROTO_OK;
    case PROTO_CMD_REMOVE_PUSHER:
      CHECK(check_field(ctx, "app_id", c->app_id, 0));
      CHECK(check_field(ctx, "push_key", c->push_key, 0));
      CHECK(check_field(ctx, "user_id", c->user_id, FIELD_MAY_HAVE_SPACES));
      put_char(w, ' ');
      put(w, c->app_id.ptr, c->app_id.len);
      put_char(w, ' ');
      put(w, c->push_key.ptr, c->push_key.len);
      put_char(w, ' ');
      put(w, c->user_id.ptr, c->user_id.len);
      return PROTO_OK;
    case PROTO_CMD_INVALIDATE_CACHE:
      CHECK(check_field(ctx, "cache_func", c->cache_func, 0));
      CHECK(check_json(ctx, "keys", c->row, 0, NULL));
      put_char(w, ' ');
      put(w, c->cache_func.ptr, c->cache_func.len);
      put_char(w, ' ');
      put(w, c->row.ptr, c->row.len);
      return PROTO_OK;
    case PROTO_CMD_USER_IP:
      CHECK(check_field(ctx, "user_id", c->user_id, 0));
      CHECK(check_json(ctx, "row", c->row, 5,
                       "a JSON array of 5 items [access_token, ip, user_agent, device_id, "
                       "last_seen_ms]"));
      put_char(w, ' ');
      put(w, c->user_id.ptr, c->user_id.len);
      put_char(w, ' ');
      put(w, c->row.ptr, c->row.len);
      return PROTO_OK;
    case PROTO_CMD_LOCK_RELEASED:
      CHECK(check_json(ctx, "row", c->row, 3,
                       "a JSON array of 3 items [instance, lock_name, lock_key]"));
      put_char(w, ' ');
      put(w, c->row.ptr, c->row.len);
      return PROTO_OK;
    default:
      /* Free text: SERVER, PING, ERROR, NAME, SYNC, REMOTE_SERVER_UP, task ids. */
      CHECK(check_field(ctx, "text", c->text, FIELD_MAY_BE_EMPTY | FIELD_MAY_HAVE_SPACES));
      if (c->text.len == 0 && !c->trailing_space) {
        if (!modern) {
          return proto_error_fill(ctx->err, PROTO_ERR_BAD_FIELD, c->kind, "text", 0,
                                  "%s: field 'text' must not be empty in the 2018 dialect "
                                  "unless trailing_space is set (a 2018 line needs a space)",
                                  ctx->name);
        }
        return PROTO_OK;
      }
      put_char(w, ' ');
      put(w, c->text.ptr, c->text.len);
      return PROTO_OK;
  }
}

int proto_format_command(proto_dialect_t dialect, const proto_command_t *cmd, char *buf, size_t cap,
                         proto_error_t *err) {
  proto_error_clear(err);
  if (buf != NULL && cap > 0) buf[0] = '\0';
  if (cmd == NULL || buf == NULL || cap == 0) {
    proto_error_fill(err, PROTO_ERR_BAD_FIELD, PROTO_CMD_NONE, NULL, 0,
                     "format: cmd and buf must not be NULL and cap must be positive");
    return -1;
  }
  if (dialect != PROTO_DIALECT_2018 && dialect != PROTO_DIALECT_MODERN) {
    proto_error_fill(err, PROTO_ERR_BAD_FIELD, cmd->kind, "dialect", 0,
                     "format: dialect %d is neither PROTO_DIALECT_2018 nor "
                     "PROTO_DIALECT_MODERN",
                     (int)dialect);
    return -1;
  }
  if (!proto_command_in_dialect(dialect, cmd->kind)) {
    proto_error_fill(err, PROTO_ERR_UNKNOWN_COMMAND, cmd->kind, "kind", 0,
                     "%s: field 'kind' must be a command of the %s dialect, got %s (%d)",
                     proto_command_name(cmd->kind), proto_dialect_name(dialect),
                     proto_command_name(cmd->kind), (int)cmd->kind);
    return -1;
  }
  format_ctx_t ctx = {dialect, cmd, proto_command_name(cmd->kind), err};
  size_t limit = cap - 1 < PROTO_MAX_LINE ? cap - 1 : PROTO_MAX_LINE;
  writer_t w = {buf, limit, 0};
  put(&w, ctx.name, strlen(ctx.name));
  if (write_data(&ctx, &w) != PROTO_OK) {
    buf[0] = '\0';
    return -1;
  }
  if (w.len > PROTO_MAX_LINE) {
    buf[0] = '\0';
    proto_error_fill(err, PROTO_ERR_TOO_LONG, cmd->kind, "line", PROTO_MAX_LINE,
                     "%s: field 'line' must be at most %d bytes, the command needs %zu", ctx.name,
                     PROTO_MAX_LINE, w.len);
    return -1;
  }
  if (w.len > limit) {
    buf[0] = '\0';
    proto_error_fill(err, PROTO_ERR_TOO_LONG, cmd->kind, "line", limit,
                     "%s: field 'line' needs %zu bytes plus a NUL, the buffer holds %zu", ctx.name,
                     w.len, cap);
    return -1;
  }
  buf[w.len] = '\0';
  return (int)w.len;
}

/* ---- many RDATA lines of one stream ------------------------------------------------- */

void proto_rdata_writer_init(proto_rdata_writer_t *writer, proto_dialect_t dialect,
                             proto_slice_t stream, proto_slice_t instance) {
  memset(writer, 0, sizeof *writer);
  writer->dialect = dialect;
  writer->cmd.kind = PROTO_CMD_RDATA;
  writer->cmd.stream = stream;
  writer->cmd.instance = instance;
  /* The head is what proto_format_command writes before the token, taken from a line
   * whose token and row ("0 0") cannot be refused. */
  writer->cmd.row = proto_slice_cstr("0");
  char line[sizeof writer->head + 8];
  int n = proto_format_command(dialect, &writer->cmd, line, sizeof line, NULL);
  writer->cmd.row = (proto_slice_t){NULL, 0};
  if (n < 3 || (size_t)n - 3 >= sizeof writer->head) return;
  writer->head_len = (size_t)n - 3;
  memcpy(writer->head, line, writer->head_len);
  writer->head_ok = true;
}

int proto_rdata_write(const proto_rdata_writer_t *writer, bool token_is_batch, int64_t token,
                      proto_slice_t row, char *buf, size_t cap, proto_error_t *err) {
  proto_command_t cmd = writer->cmd;
  cmd.token_is_batch = token_is_batch;
  cmd.token = token;
  cmd.row = row;
  /* Anything the fast way would have to explain goes the slow way, so every refusal
   * is proto_format_command's own. */
  if (!writer->head_ok || buf == NULL || cap == 0 || row.ptr == NULL ||
      !proto_json_check(row.ptr, row.len, true, NULL))
    return proto_format_command(writer->dialect, &cmd, buf, cap, err);
  char digits[24];
  size_t digits_len = token_is_batch ? 5 : proto_int64_format(token, digits);
  size_t len = writer->head_len + digits_len + 1 + row.len;
  size_t limit = cap - 1 < PROTO_MAX_LINE ? cap - 1 : PROTO_MAX_LINE;
  if (len > limit) return proto_format_command(writer->dialect, &cmd, buf, cap, err);
  proto_error_clear(err);
  memcpy(buf, writer->head, writer->head_len);
  char *p = buf + writer->head_len;
  memcpy(p, token_is_batch ? "batch" : digits, digits_len);
  p += digits_len;
  *p++ = ' ';
  memcpy(p, row.ptr, row.len);
  p[row.len] = '\0';
  return (int)len;
}
