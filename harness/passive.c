#include "passive.h"

#include <stdio.h>

#include "proto.h"

bool passive_check_ledger(const ledger_t *ledger, const profile_t *profile, char *why,
                          size_t cap) {
  proto_sender_t sender =
      profile->transport == PROFILE_TRANSPORT_REDIS ? PROTO_SENDER_ANY : PROTO_SENDER_CLIENT;
  for (uint64_t seq = ledger_first_seq(ledger); seq < ledger_next_seq(ledger); seq++) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (e->kind != LEDGER_LINE || e->side != LEDGER_SIDE_SUT) continue;
    proto_command_t cmd;
    proto_error_t err;
    if (proto_parse_line(profile->dialect, sender, e->text, e->len, &cmd, &err) != PROTO_OK) {
      snprintf(why, cap, "FR-02%s: the SUT wrote '%.200s' on c%d, which is not a valid worker line: %s",
               cmd.kind == PROTO_CMD_PING ? "/KA-02" : "", e->text, e->conn_id, err.message);
      return false;
    }
    if (profile->transport == PROFILE_TRANSPORT_REDIS) continue; /* others' commands echo back */
    if (cmd.kind == PROTO_CMD_FEDERATION_ACK && !(profile->roles & PROFILE_ROLE_FEDSENDER)) {
      snprintf(why, cap, "OUT-10: the SUT sent '%.200s' on c%d but the profile does not declare "
               "the fedsender role", e->text, e->conn_id);
      return false;
    }
    if ((cmd.kind == PROTO_CMD_USER_SYNC || cmd.kind == PROTO_CMD_CLEAR_USER_SYNC) &&
        !(profile->roles & PROFILE_ROLE_SYNC)) {
      snprintf(why, cap, "OUT-10: the SUT sent '%.200s' on c%d but the profile does not declare "
               "the sync role (presence enabled)", e->text, e->conn_id);
      return false;
    }
  }
  return true;
}
