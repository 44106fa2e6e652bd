/* proto: the replication protocol codec, written once.
 *
 * Used by the mock homeserver, the reference worker, the fixtures engine and the
 * tests. It knows both wire dialects (spec/replication-protocol.md):
 *   PROTO_DIALECT_2018   v0.x..v1.12: REPLICATE <stream> <token>, RDATA <stream> <token> <row>,
 *                        POSITION <stream> <token>
 *   PROTO_DIALECT_MODERN v1.13+: bare REPLICATE, instance names in RDATA/POSITION,
 *                        POSITION <stream> <instance> <prev> <new>
 *
 * Three layers, all pure functions with no I/O, no globals and no allocation:
 *   framing   proto_frame_next()       split a byte buffer into LF-terminated lines,
 *                                       enforcing the 16384-byte limit
 *   parsing   proto_parse_line()       one line (without LF) -> proto_command_t
 *   writing   proto_format_command()   proto_command_t -> "<NAME> <data>" (without LF);
 *             proto_rdata_write()      the same for many RDATA lines of one stream
 *
 * Ownership: a parsed proto_command_t holds slices that point INTO the line the
 * caller passed; they stay valid only as long as that buffer does. To format, the
 * caller fills the slices from its own strings (proto_slice_cstr) and the numbers.
 * Thread-safety: every function is reentrant. */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line either side accepts, excluding the LF (Twisted LineOnlyReceiver MAX_LENGTH). */
#define PROTO_MAX_LINE 16384

typedef enum proto_dialect {
  PROTO_DIALECT_2018 = 1,
  PROTO_DIALECT_MODERN = 2,
} proto_dialect_t;

/* Who wrote the line. PROTO_SENDER_ANY skips the direction check (Redis has none). */
typedef enum proto_sender {
  PROTO_SENDER_SERVER = 1, /* main process -> worker */
  PROTO_SENDER_CLIENT = 2, /* worker -> main process */
  PROTO_SENDER_ANY = 3,
} proto_sender_t;

typedef enum proto_command_kind {
  PROTO_CMD_NONE = 0,
  PROTO_CMD_SERVER,
  PROTO_CMD_RDATA,
  PROTO_CMD_POSITION,
  PROTO_CMD_ERROR,
  PROTO_CMD_PING,
  PROTO_CMD_NAME,
  PROTO_CMD_REPLICATE,
  PROTO_CMD_USER_SYNC,
  PROTO_CMD_CLEAR_USER_SYNC,
  PROTO_CMD_FEDERATION_ACK,
  PROTO_CMD_REMOVE_PUSHER,
  PROTO_CMD_INVALIDATE_CACHE,
  PROTO_CMD_USER_IP,
  PROTO_CMD_SYNC,
  PROTO_CMD_REMOTE_SERVER_UP,
  PROTO_CMD_LOCK_RELEASED,
  PROTO_CMD_NEW_ACTIVE_TASK,
  PROTO_CMD_CANCEL_TASK,
  PROTO_CMD_COUNT
} proto_command_kind_t;

typedef struct proto_slice {
  const char *ptr; /* not NUL-terminated in general */
  size_t len;
} proto_slice_t;

/* One command. Which fields are meaningful depends on kind and dialect:
 *
 *  SERVER            text = server name
 *  PING              text = data (any; may be empty in modern)
 *  ERROR             text = free text
 *  NAME              text = name
 *  SYNC (2018)       text = data
 *  REMOTE_SERVER_UP  text = server name
 *  NEW_ACTIVE_TASK,
 *  CANCEL_TASK       text = task id
 *  RDATA             stream, instance (modern), token or token_is_batch, row (JSON)
 *  POSITION          2018: stream, token.  modern: stream, instance, prev_token, new_token
 *  REPLICATE         2018: stream (or "ALL"), token or token_is_now.  modern: nothing
 *                    (data ignored; `trailing_space` tells "REPLICATE " from "REPLICATE")
 *  USER_SYNC         2018: user_id, sync_start, last_sync_ms.
 *                    modern: instance, user_id, [device_id: has_device_id, "None" kept
 *                    as text], sync_start, last_sync_ms
 *  CLEAR_USER_SYNC   instance
 *  FEDERATION_ACK    2018: token.  modern: instance, token
 *  REMOVE_PUSHER     app_id, push_key, user_id (last field takes the rest)
 *  INVALIDATE_CACHE  cache_func, row = keys JSON
 *  USER_IP           user_id, row = JSON array
 *  LOCK_RELEASED     row = JSON array [instance, lock_name, lock_key]
 */
typedef struct proto_command {
  proto_command_kind_t kind;
  proto_slice_t name; /* the command word as on the wire (parse only) */
  proto_slice_t data; /* everything after the first space (parse only) */
  bool trailing_space; /* parse: line was "NAME " with empty data; format: emit it */

  proto_slice_t text;
  proto_slice_t stream;
  proto_slice_t instance;
  proto_slice_t row;
  proto_slice_t user_id;
  proto_slice_t device_id;
  proto_slice_t app_id;
  proto_slice_t push_key;
  proto_slice_t cache_func;

  bool token_is_batch; /* RDATA */
  bool token_is_now;   /* REPLICATE 2018 */
  bool has_device_id;  /* USER_SYNC modern v1.92+ form */
  bool sync_start;     /* USER_SYNC: true = start, false = end */
  int64_t token;       /* RDATA, REPLICATE (2018), POSITION (2018), FEDERATION_ACK */
  int64_t prev_token;  /* POSITION modern */
  int64_t new_token;   /* POSITION modern */
  int64_t last_sync_ms; /* USER_SYNC */
} proto_command_t;

typedef enum proto_error_code {
  PROTO_OK = 0,
  PROTO_ERR_BLANK,           /* empty or whitespace-only line (callers usually ignore it) */
  PROTO_ERR_TOO_LONG,        /* more than PROTO_MAX_LINE bytes */
  PROTO_ERR_BAD_BYTES,       /* NUL, CR, LF inside the line, or invalid UTF-8 */
  PROTO_ERR_UNKNOWN_COMMAND, /* the command word names no command of the dialect */
  PROTO_ERR_WRONG_DIRECTION, /* a known command the sender may not send */
  PROTO_ERR_BAD_FIELD,       /* a field is missing, extra or malformed */
} proto_error_code_t;

/* Why a line was refused, precisely: which command, which field, what was expected. */
typedef struct proto_error {
  proto_error_code_t code;
  proto_command_kind_t kind; /* the command, when the name was recognised */
  const char *field;         /* static field name ("token", "row", ...) or NULL */
  size_t offset;             /* byte offset in the line where the problem starts */
  char message[256];         /* e.g. "RDATA: field 'token' must be a decimal integer or 'batch', got 'x1'" */
} proto_error_t;

/* ---- framing ---------------------------------------------------------------- */

typedef enum proto_frame_status {
  PROTO_FRAME_LINE = 0,  /* a complete line: [buf, buf+line_len), consumed includes the LF */
  PROTO_FRAME_NEED_MORE, /* no LF yet and at most PROTO_MAX_LINE bytes buffered */
  PROTO_FRAME_TOO_LONG,  /* a line (terminated or not) exceeds PROTO_MAX_LINE */
} proto_frame_status_t;

/* Looks for the first line in buf[0..len). Only LF delimits; a CR is data. Complete
 * lines before an over-long tail are still returned, as Twisted delivers them. On
 * NEED_MORE and TOO_LONG *line_len and *consumed are 0; either pointer may be NULL. */
proto_frame_status_t proto_frame_next(const char *buf, size_t len, size_t *line_len,
                                      size_t *consumed);

/* ---- names and direction sets -------------------------------------------------- */

/* "RDATA" etc.; "?" for out-of-range kinds. */
const char *proto_command_name(proto_command_kind_t kind);
/* PROTO_CMD_NONE when the word names no command of any dialect. */
proto_command_kind_t proto_command_from_name(const char *name, size_t len);
/* Whether the command exists in the dialect at all. */
bool proto_command_in_dialect(proto_dialect_t dialect, proto_command_kind_t kind);
/* Whether `sender` may send it in the dialect (spec §2.1 allowed sets). */
bool proto_command_allowed(proto_dialect_t dialect, proto_command_kind_t kind,
                           proto_sender_t sender);
const char *proto_dialect_name(proto_dialect_t dialect); /* "2018" / "modern" */
/* Accepts "2018" and "modern"; returns 0 on success, -1 otherwise. */
int proto_dialect_from_name(const char *name, proto_dialect_t *out);

/* ---- parsing ---------------------------------------------------------------------- */

/* Parses one line (without its LF). Returns PROTO_OK and fills *out, or an error code
 * and fills *err (if non-NULL). Rules: spec §1.2 (split at the first space; a line with
 * no space is a bare command word), §2 (per-command grammar per dialect), JSON fields
 * validated as JSON (RFC 8259, no NaN/Infinity), integers are decimal int64 with an
 * optional leading '-' (2018 tokens may be negative only where the spec allows).
 *
 * Details (added with the implementation):
 *  - Checks run in the order a Synapse receiver of the dialect runs them, so the code
 *    says which ERROR it would send: length, blank, bytes; then 2018: a line without a
 *    space -> PROTO_ERR_BAD_FIELD (field "data"; Synapse drops the connection), unknown
 *    name, direction, fields; modern: unknown name, fields, direction.
 *  - Free-text commands (SERVER, PING, ERROR, NAME, SYNC, REMOTE_SERVER_UP, task ids)
 *    take the data as is, empty included, like Synapse's from_line.
 *  - Modern USER_SYNC accepts both the 4-field (v1.13-v1.91) and 5-field (v1.92+) form.
 *  - USER_IP must be a JSON array of 5 items and LOCK_RELEASED one of 3 (Synapse unpacks
 *    them in from_line); RDATA rows and INVALIDATE_CACHE keys may be any JSON value.
 *  - Identifier fields (stream, instance, user_id, ...) may not be empty.
 *  - A '-' sign is accepted on every integer (Synapse's int() does; the spec names no
 *    field that refuses it); leading zeros too ("007" formats back as "7").
 *  - CR and NUL are PROTO_ERR_BAD_BYTES here although Synapse would keep them as data.
 *  - REMOTE_SERVER_UP is in the 2018 dialect both ways (v1.9-v1.12, spec §0).
 *  - On success err->code is PROTO_OK and err->message is empty. out may be NULL. */
proto_error_code_t proto_parse_line(proto_dialect_t dialect, proto_sender_t sender,
                                    const char *line, size_t len, proto_command_t *out,
                                    proto_error_t *err);

/* ---- writing ------------------------------------------------------------------------ */

/* Writes "<NAME> <data>" (no LF) into buf and NUL-terminates it. Returns the length,
 * or -1 (err filled) when a field is invalid for the dialect, the text would contain
 * a LF/CR/NUL, or the line would exceed PROTO_MAX_LINE or cap-1. A command with empty
 * data is written as "NAME " when trailing_space is set (Synapse's own habit) and as
 * "NAME" otherwise. JSON slices are written as given (not re-encoded).
 * Every field is checked so the line parses back to the same command: valid UTF-8,
 * no space inside a field a space would split, no empty identifier, valid JSON. In
 * 2018 an empty text needs trailing_space (a 2018 line without a space is refused).
 * Integers are written in canonical decimal; 2018 token_is_now is written "NOW". On
 * failure buf holds "". */
int proto_format_command(proto_dialect_t dialect, const proto_command_t *cmd, char *buf,
                         size_t cap, proto_error_t *err);

/* Many RDATA lines of one stream (a main emitting rows): the head "RDATA <stream>
 * [<instance>] " is checked and written once by proto_rdata_writer_init, and each
 * proto_rdata_write then checks only its row. A line written so is byte for byte what
 * proto_format_command writes for the same command, and a refused row gets the same
 * return value and error (the writer hands every refusal to proto_format_command).
 * The writer keeps the stream and instance slices: their bytes must outlive it. */
typedef struct proto_rdata_writer {
  proto_dialect_t dialect;
  proto_command_t cmd; /* kind, stream, instance; token and row per line */
  bool head_ok;        /* false: the head is refused, and every line says why */
  size_t head_len;
  char head[256]; /* a longer (valid) head always takes the slow way */
} proto_rdata_writer_t;

void proto_rdata_writer_init(proto_rdata_writer_t *writer, proto_dialect_t dialect,
                             proto_slice_t stream, proto_slice_t instance);
/* What proto_format_command(dialect, RDATA stream instance token|batch row) returns. */
int proto_rdata_write(const proto_rdata_writer_t *writer, bool token_is_batch, int64_t token,
                      proto_slice_t row, char *buf, size_t cap, proto_error_t *err);

/* ---- helpers -------------------------------------------------------------------------- */

proto_slice_t proto_slice_cstr(const char *s); /* s may be NULL -> empty slice */
bool proto_slice_eq(proto_slice_t a, const char *s);
/* Copies into buf as a NUL-terminated string (truncating); returns buf. */
char *proto_slice_copy(proto_slice_t s, char *buf, size_t cap);

/* True for an empty or whitespace-only line. */
bool proto_line_is_blank(const char *line, size_t len);

/* Validates that buf[0..len) is exactly one JSON value (RFC 8259; no NaN/Infinity;
 * nesting depth <= 256), allowing surrounding whitespace. No allocation. On failure
 * returns false and sets *bad_offset (if non-NULL) to the first offending byte. */
bool proto_json_valid(const char *buf, size_t len, size_t *bad_offset);

/* The ERROR text a receiver of the given dialect sends when it rejects `line`
 * (spec §1.2 and §2.2 ERROR table), e.g. modern
 *   "failed to parse line: <message> ('<line>'):"
 * 2018 unknown or wrong-direction names
 *   "invalid command: <NAME>"
 * 2018 bad arguments
 *   "failed to parse line for  '<NAME>': <message> ('<rest>'):"
 * and "Line length exceeded" for PROTO_ERR_TOO_LONG. Long echoes of the line are cut so
 * the result always fits in PROTO_MAX_LINE. Writes a NUL-terminated string into buf and
 * returns its length (truncated to cap-1).
 *
 * Details (added with the implementation): modern wrong-direction names also give
 * "invalid command: <NAME>", and a modern unknown name gives Synapse's exact
 * "failed to parse line: KeyError('<NAME>') ('<line>'):". Quoting follows Python's
 * repr(), as Synapse's %r does. The text is printable UTF-8 and "ERROR <text>" fits in
 * PROTO_MAX_LINE (a cut echo ends in "'...):"). Returns 0 and writes "" when that
 * receiver sends no ERROR at all: PROTO_OK, PROTO_ERR_BLANK (ignored), a line that is
 * not valid UTF-8, and in 2018 a line without a space (the last two drop the
 * connection silently): close without an ERROR line then. */
size_t proto_rejection_text(proto_dialect_t dialect, const char *line, size_t len,
                            const proto_error_t *err, char *buf, size_t cap);

#endif
