/* Framing: Twisted LineOnlyReceiver semantics (delimiter b"\n", MAX_LENGTH 16384,
 * checked on each complete line and on the unterminated remainder). */
#include "proto.h"

#include <string.h>

proto_frame_status_t proto_frame_next(const char *buf, size_t len, size_t *line_len,
                                      size_t *consumed) {
  /* Looking one byte past the limit is enough: a LF there or later means the line
   * is too long, and no LF in the first PROTO_MAX_LINE + 1 bytes means the same. */
  const char *lf = NULL;
  if (buf != NULL && len > 0)
    lf = memchr(buf, '\n', len < PROTO_MAX_LINE + 1 ? len : PROTO_MAX_LINE + 1);
  /* The outputs are written once, on every path. */
  size_t n = lf != NULL ? (size_t)(lf - buf) : 0;
  if (line_len != NULL) *line_len = n;
  if (consumed != NULL) *consumed = lf != NULL ? n + 1 : 0;
  if (lf != NULL) return PROTO_FRAME_LINE;
  return buf != NULL && len > PROTO_MAX_LINE ? PROTO_FRAME_TOO_LONG : PROTO_FRAME_NEED_MORE;
}
