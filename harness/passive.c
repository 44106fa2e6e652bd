#include "passive.h"

#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "sutlog.h"

#define PASSIVE_LOG_MAX_BYTES (64u * 1024u * 1024u)
#define UNHANDLED_DEFERRED "Unhandled error in Deferred"

typedef struct unhandled {
  char line[300];
} unhandled_t;

static bool is_unhandled_report(const sutlog_record_t *r, void *arg) {
  if (!r->is_record || strncmp(r->message, UNHANDLED_DEFERRED, strlen(UNHANDLED_DEFERRED)) != 0)
    return false;
  unhandled_t *u = arg;
  snprintf(u->line, sizeof u->line, "%.280s", r->line);
  return true;
}

bool passive_check_log(const char *log_file, const profile_t *profile, char *why, size_t cap) {
  /* v0.33.3-v0.33.5 reported handler failures only this way (requirements.md BG-07). */
  if (profile->era_major == 0 &&
      (profile->era_minor < 33 || (profile->era_minor == 33 && profile->era_patch < 6)))
    return true;
  if (log_file == NULL) return true;
  unhandled_t u;
  long offset = 0;
  if (!sutlog_scan(profile, log_file, &offset, PASSIVE_LOG_MAX_BYTES, is_unhandled_report, &u))
    return true;
  snprintf(why, cap, "BG-07: the SUT logged Twisted's report of an unhandled failure: '%s' (%s)",
           u.line, log_file);
  return false;
}

bool passive_check_entry(const ledger_entry_t *e, const profile_t *profile, char *why, size_t cap) {
  if (e->kind != LEDGER_LINE || e->side != LEDGER_SIDE_SUT) return true;
  proto_sender_t sender =
      profile->transport == PROFILE_TRANSPORT_REDIS ? PROTO_SENDER_ANY : PROTO_SENDER_CLIENT;
  proto_command_t cmd;
  proto_error_t err;
  if (proto_parse_line(profile->dialect, sender, e->text, e->len, &cmd, &err) != PROTO_OK) {
    snprintf(why, cap,
             "FR-02%s: the SUT wrote '%.200s' on c%d, which is not a valid worker line: %s",
             err.kind == PROTO_CMD_PING ? "/KA-02" : "", e->text, e->conn_id, err.message);
    return false;
  }
  if (profile->transport == PROFILE_TRANSPORT_REDIS) return true; /* others' commands echo back */
  if (cmd.kind == PROTO_CMD_FEDERATION_ACK && !(profile->roles & PROFILE_ROLE_FEDSENDER)) {
    snprintf(why, cap,
             "OUT-10: the SUT sent '%.200s' on c%d but the profile does not declare "
             "the fedsender role",
             e->text, e->conn_id);
    return false;
  }
  if ((cmd.kind == PROTO_CMD_USER_SYNC || cmd.kind == PROTO_CMD_CLEAR_USER_SYNC) &&
      !(profile->roles & PROFILE_ROLE_SYNC)) {
    snprintf(why, cap,
             "OUT-10: the SUT sent '%.200s' on c%d but the profile does not declare "
             "the sync role (presence enabled)",
             e->text, e->conn_id);
    return false;
  }
  return true;
}

bool passive_check_ledger(const ledger_t *ledger, const profile_t *profile, char *why, size_t cap) {
  for (uint64_t seq = ledger_first_seq(ledger); seq < ledger_next_seq(ledger); seq++)
    if (!passive_check_entry(ledger_get(ledger, seq), profile, why, cap)) return false;
  return true;
}
