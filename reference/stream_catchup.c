#include "stream_catchup.h"

#include <inttypes.h>

#include "wlog.h"

#define WLOG_LOGGER "synapse.replication.tcp.handler"

bool stream_catchup_needed(int64_t cur, int64_t prev_token, int64_t new_token) {
  return !(prev_token <= cur && cur <= new_token);
}

int64_t stream_catchup_fill_gap(const char *stream, const char *instance, int64_t cur,
                                int64_t prev_token, int64_t new_token) {
  if (cur > new_token) {
    /* Ahead of the writer's announcement: a fetch of (cur, new] would be empty. */
    WLOG_INFO("Stream %s (%s) already at %" PRId64 ", POSITION says %" PRId64 "..%" PRId64
              "; keeping %" PRId64,
              stream, instance, cur, prev_token, new_token, cur);
    return cur;
  }
  WLOG_WARNING("Gap in stream %s: at %" PRId64 ", POSITION says %" PRId64 "..%" PRId64
               "; catch-up over HTTP not implemented yet",
               stream, cur, prev_token, new_token);
  return new_token;
}
