/* The ERROR text a Synapse receiver sends when it refuses a line (spec §1.2, §2.2).
 *
 * Synapse builds these with Python's %r, so the echoed line is written the way
 * Python's repr() writes a str: single quotes unless the text holds a ' and no ",
 * backslash escapes for the quote, \\, \t, \n, \r and other control characters. The
 * result is printable UTF-8 with no CR/LF/NUL, so it is itself a valid ERROR line. */
#include "proto_internal.h"

#include <string.h>

/* The ERROR line "ERROR <text>" must itself fit in PROTO_MAX_LINE. */
#define TEXT_MAX (PROTO_MAX_LINE - 6)
#define ELLIPSIS "..."

typedef struct text_out {
  char *buf;
  size_t limit; /* most bytes of text (without the NUL) */
  size_t len;
} text_out_t;

/* Appends as much of p[0..n) as fits, never splitting a UTF-8 sequence. */
static void out_raw(text_out_t *o, const char *p, size_t n) {
  size_t room = o->limit - o->len;
  if (n > room) n = proto_utf8_boundary(p, room);
  memcpy(o->buf + o->len, p, n);
  o->len += n;
}

static void out_str(text_out_t *o, const char *s) {
  out_raw(o, s, strlen(s));
}

static bool repr_non_printable(unsigned cp) {
  /* The code points Python's str.isprintable() rejects that show up in practice:
   * C0/C1 controls, no-break and other separators, format characters. */
  return cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
         (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF;
}

/* Writes one escaped character of the repr into tmp; returns its length. */
static size_t repr_char(const unsigned char *s, size_t avail, char quote, size_t *consumed,
                        char *tmp) {
  static const char hex[] = "0123456789abcdef";
  unsigned char c = s[0];
  *consumed = 1;
  if (c == '\\' || c == (unsigned char)quote) {
    tmp[0] = '\\';
    tmp[1] = (char)c;
    return 2;
  }
  if (c == '\t' || c == '\n' || c == '\r') {
    tmp[0] = '\\';
    tmp[1] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
    return 2;
  }
  if (c < 0x80) {
    if (c < 0x20 || c == 0x7F) {
      tmp[0] = '\\';
      tmp[1] = 'x';
      tmp[2] = hex[c >> 4];
      tmp[3] = hex[c & 15];
      return 4;
    }
    tmp[0] = (char)c;
    return 1;
  }
  size_t n = proto_utf8_sequence_length(s, avail);
  if (n == 0) {
    /* Cannot happen for a line Synapse decoded; keep the output valid anyway. */
    tmp[0] = '\\';
    tmp[1] = 'x';
    tmp[2] = hex[c >> 4];
    tmp[3] = hex[c & 15];
    return 4;
  }
  unsigned cp = n == 2   ? ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu)
                : n == 3 ? ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu)
                         : ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
                               (s[3] & 0x3Fu);
  *consumed = n;
  if (repr_non_printable(cp)) {
    size_t k = 0;
    tmp[k++] = '\\';
    if (cp <= 0xFF) {
      tmp[k++] = 'x';
      tmp[k++] = hex[(cp >> 4) & 15];
      tmp[k++] = hex[cp & 15];
    } else {
      tmp[k++] = 'u';
      for (int shift = 12; shift >= 0; shift -= 4) tmp[k++] = hex[(cp >> shift) & 15];
    }
    return k;
  }
  memcpy(tmp, s, n);
  return n;
}

/* Python repr() of p[0..n), followed by `tail`; cut (with "...") so that the tail
 * always fits. */
static void out_repr(text_out_t *o, const char *p, size_t n, const char *tail) {
  bool has_single = memchr(p, '\'', n) != NULL;
  bool has_double = memchr(p, '"', n) != NULL;
  char quote = has_single && !has_double ? '"' : '\'';
  size_t tail_len = strlen(tail);
  size_t reserve = 1 + strlen(ELLIPSIS) + tail_len; /* closing quote, "...", tail */
  out_raw(o, &quote, 1);
  const unsigned char *s = (const unsigned char *)p;
  size_t i = 0;
  bool cut = false;
  while (i < n) {
    char tmp[8];
    size_t used;
    size_t k = repr_char(s + i, n - i, quote, &used, tmp);
    if (o->len + k + reserve > o->limit) {
      cut = true;
      break;
    }
    memcpy(o->buf + o->len, tmp, k);
    o->len += k;
    i += used;
  }
  out_raw(o, &quote, 1);
  if (cut) out_str(o, ELLIPSIS);
  out_str(o, tail);
}

size_t proto_rejection_text(proto_dialect_t dialect, const char *line, size_t len,
                            const proto_error_t *err, char *buf, size_t cap) {
  if (buf == NULL || cap == 0) return 0;
  buf[0] = '\0';
  if (err == NULL) return 0;
  if (line == NULL) {
    line = "";
    len = 0;
  }
  text_out_t o = {buf, cap - 1 < TEXT_MAX ? cap - 1 : TEXT_MAX, 0};

  switch (err->code) {
    case PROTO_OK:
    case PROTO_ERR_BLANK:
      return 0; /* accepted, or ignored: nothing to send */
    case PROTO_ERR_TOO_LONG:
      out_str(&o, "Line length exceeded");
      buf[o.len] = '\0';
      return o.len;
    default:
      break;
  }

  /* Lines that never reach the command parser are dropped without an ERROR: an
   * undecodable line (the decode raises outside the try), and in 2018 a line without
   * a space (the unguarded split raises). */
  if (proto_utf8_first_invalid(line, len) < len) return 0;
  const char *space = memchr(line, ' ', len);
  if (dialect == PROTO_DIALECT_2018 && space == NULL) return 0;
  size_t name_len = space != NULL ? (size_t)(space - line) : len;
  const char *rest = space != NULL ? space + 1 : line + len;
  size_t rest_len = space != NULL ? len - name_len - 1 : 0;
  bool name_clean = proto_bytes_first_bad(line, name_len) == name_len;

  bool invalid_command = err->code == PROTO_ERR_WRONG_DIRECTION ||
                         (dialect == PROTO_DIALECT_2018 && err->code == PROTO_ERR_UNKNOWN_COMMAND);
  if (invalid_command && name_clean) {
    out_str(&o, "invalid command: ");
    out_raw(&o, line, name_len);
  } else if (dialect == PROTO_DIALECT_MODERN) {
    /* The unknown-name case is the KeyError from COMMAND_MAP[name], as traced
     * ("failed to parse line: KeyError('HELLO') ('HELLO world'):"). */
    out_str(&o, "failed to parse line: ");
    if (err->code == PROTO_ERR_UNKNOWN_COMMAND && name_len < 256) {
      out_str(&o, "KeyError(");
      out_repr(&o, line, name_len, ")");
    } else {
      out_str(&o, err->message);
    }
    out_str(&o, " (");
    out_repr(&o, line, len, "):");
  } else {
    out_str(&o, "failed to parse line for  ");
    if (name_len < 256) {
      out_repr(&o, line, name_len, ": ");
    } else {
      out_repr(&o, line, 64, ": ");
    }
    out_str(&o, err->message);
    out_str(&o, " (");
    out_repr(&o, rest, rest_len, "):");
  }
  buf[o.len] = '\0';
  return o.len;
}
