/* passive: requirements checked on every test's wire ledger, whatever the test is
 * about (requirements.md marks them "passive"):
 *   FR-02  every line the SUT wrote is a valid command of its dialect that a worker
 *          may send (parsed with the codec in the client direction; over Redis, any
 *          direction), without CR or embedded bytes the grammar refuses;
 *   KA-02  (2018) every PING carries data — part of the 2018 grammar;
 *   OUT-10 FEDERATION_ACK only from a fedsender, USER_SYNC / CLEAR_USER_SYNC only
 *          from a SUT with the sync role.
 * A violation names the requirement, the line and where it was seen. */
#ifndef PASSIVE_H
#define PASSIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "ledger.h"
#include "profile.h"

/* Checks every SUT line in the ledger. Returns true if all hold; otherwise false with
 * a one-line description ("FR-02: c2 line 'PING' does not parse: ...") in why. */
bool passive_check_ledger(const ledger_t *ledger, const profile_t *profile, char *why,
                          size_t cap);

#endif
