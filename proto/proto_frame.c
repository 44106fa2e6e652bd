/* Framing: Twisted LineOnlyReceiver semantics (delimiter b"\n", MAX_LENGTH 16384,
 * checked on each complete line and on the unterminated remainder). */
#include "proto.h"

#include <string.h>

proto_frame_status_t proto_frame_next(const char *buf, size_t len, size_t *line_len,
                                      size_t *consumed) {
  if (line_len != NULL) *line_len = 0;
  if (consumed != NULL) *consumed = 0;
  if (buf == NULL || len == 0) return PROTO_FRAME_NEED_MORE;

  /* Looking one byte past the limit is enough: a LF there or later means the line
   * is too long, and no LF in the first PROTO_MAX_LINE + 1 bytes means the same. */
  size_t window = len < PROTO_MAX_LINE + 1 ? len : PROTO_MAX_LINE + 1;
  const char *lf = memchr(buf, '\n', window);
  if (lf != NULL) {
    size_t n = (size_t)(lf - buf);
    if (line_len != NULL) *line_len = n;
    if (consumed != NULL) *consumed = n + 1;
    return PROTO_FRAME_LINE;
  }
  return len > PROTO_MAX_LINE ? PROTO_FRAME_TOO_LONG : PROTO_FRAME_NEED_MORE;
}
