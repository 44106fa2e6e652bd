/* stream_rows: the row layouts refworker understands, checked the way Synapse's
 * Stream.parse_row (Row(*row)) rejects a row that does not fit (requirements BG-05).
 *
 * Only the streams refworker acts on have a layout here:
 *   typing        [room_id, [user_id, ...]]      (both dialects)
 *   device_lists  [user_id, ...]                 (the first field is the user id: 2018
 *                 rows are [user_id, destination], later ones add flags)
 * Rows of other streams are accepted as they are (refworker does not read them).
 * A row that does not fit is reported as a handler_error_t, as the Python TypeError
 * the namedtuple constructor would raise. Pure functions, no state. */
#ifndef STREAM_ROWS_H
#define STREAM_ROWS_H

#include <stddef.h>

#include "handler_error.h"

/* Returns 0 when `row` (JSON text, len bytes) fits the stream's layout, else -1 with
 * *error filled (error may be NULL). */
int stream_rows_check(const char *stream, const char *row, size_t len, handler_error_t *error);

/* The user id of a device_lists row (its first field), copied into buf; -1 when the row
 * does not fit (see stream_rows_check). */
int stream_rows_device_user(const char *row, size_t len, char *buf, size_t cap);

#endif
