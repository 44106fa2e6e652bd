/* Case tables for tests/test_proto.c (included by it only). Each row carries an id;
 * each table carries the requirement it checks and the upstream source, printed on
 * failure together with Expected / Actual.
 *
 * Sources: [P §x] = /work/shared/spec/replication-protocol.md section x;
 * [T x] = /work/shared/reference trace x; [R x] = spec/requirements.md id x. */
#ifndef TEST_PROTO_CASES_H
#define TEST_PROTO_CASES_H

#include "proto.h"

#include <stddef.h>

typedef struct bytes {
  const char *p;
  size_t n;
} bytes_t;

/* A string literal with its exact length, so cases may hold NUL bytes. */
#define B(s) \
  { (s), sizeof(s) - 1 }
#define S(s) \
  { (s), sizeof(s) - 1 }

#define D18 PROTO_DIALECT_2018
#define DMO PROTO_DIALECT_MODERN
#define SRV PROTO_SENDER_SERVER
#define CLI PROTO_SENDER_CLIENT
#define ANY PROTO_SENDER_ANY

/* ---- every example line of the spec: parse in its dialect, round-trip ------------- */

#define EXAMPLES_REQ                                                                            \
  "every example line of the spec parses in its dialect from its sender and formats back byte " \
  "for byte"

typedef struct example_case {
  const char *id;
  const char *source;
  proto_dialect_t dialect;
  proto_sender_t sender;
  const char *line;
  proto_command_kind_t kind;
} example_case_t;

static const example_case_t example_cases[] = {
    /* §1.3 example, 2018 (fenced block) */
    {"EX-13a-01", "P §1.3 2018", D18, SRV, "SERVER localhost:8823", PROTO_CMD_SERVER},
    {"EX-13a-02", "P §1.3 2018", D18, SRV, "PING 1490197665618", PROTO_CMD_PING},
    {"EX-13a-03", "P §1.3 2018", D18, CLI, "NAME synapse.app.appservice", PROTO_CMD_NAME},
    {"EX-13a-04", "P §1.3 2018", D18, CLI, "PING 1490197665618", PROTO_CMD_PING},
    {"EX-13a-05", "P §1.3 2018", D18, CLI, "REPLICATE events 1", PROTO_CMD_REPLICATE},
    {"EX-13a-06", "P §1.3 2018", D18, CLI, "REPLICATE backfill 1", PROTO_CMD_REPLICATE},
    {"EX-13a-07", "P §1.3 2018", D18, CLI, "REPLICATE caches 1", PROTO_CMD_REPLICATE},
    {"EX-13a-08", "P §1.3 2018", D18, SRV, "POSITION events 1", PROTO_CMD_POSITION},
    {"EX-13a-09", "P §1.3 2018", D18, SRV, "POSITION backfill 1", PROTO_CMD_POSITION},
    {"EX-13a-10", "P §1.3 2018", D18, SRV, "POSITION caches 1", PROTO_CMD_POSITION},
    {"EX-13a-11", "P §1.3 2018", D18, SRV,
     "RDATA caches 2 [\"get_user_by_id\", [\"@01register-user:localhost:8823\"], 1490197670513]",
     PROTO_CMD_RDATA},
    {"EX-13a-12", "P §1.3 2018", D18, CLI, "PING 1490197675618", PROTO_CMD_PING},
    {"EX-13a-13", "P §1.3 2018", D18, SRV, "ERROR server shutting down", PROTO_CMD_ERROR},
    /* §1.3 example, modern TCP (fenced block) */
    {"EX-13b-01", "P §1.3 modern", DMO, SRV, "SERVER localhost:8823", PROTO_CMD_SERVER},
    {"EX-13b-02", "P §1.3 modern", DMO, SRV, "PING 1490197665618", PROTO_CMD_PING},
    {"EX-13b-03", "P §1.3 modern", DMO, CLI, "NAME synapse.app.appservice", PROTO_CMD_NAME},
    {"EX-13b-04", "P §1.3 modern", DMO, CLI, "PING 1490197665618", PROTO_CMD_PING},
    {"EX-13b-05", "P §1.3 modern", DMO, CLI, "REPLICATE ", PROTO_CMD_REPLICATE},
    {"EX-13b-06", "P §1.3 modern", DMO, SRV, "POSITION events master 1 1", PROTO_CMD_POSITION},
    {"EX-13b-07", "P §1.3 modern", DMO, SRV, "POSITION caches master 1 1", PROTO_CMD_POSITION},
    {"EX-13b-08", "P §1.3 modern", DMO, SRV,
     "RDATA caches master 2 "
     "[\"get_user_by_id\",[\"@01register-user:localhost:8823\"],1490197670513]",
     PROTO_CMD_RDATA},
    /* §2.3 batch example (fenced block; 2018 field layout) */
    {"EX-23-01", "P §2.3", D18, SRV, "RDATA device_lists batch [\"@a:hs\", \"remote1.org\"]",
     PROTO_CMD_RDATA},
    {"EX-23-02", "P §2.3", D18, SRV, "RDATA device_lists batch [\"@a:hs\", \"remote2.org\"]",
     PROTO_CMD_RDATA},
    {"EX-23-03", "P §2.3", D18, SRV, "RDATA device_lists 54 [\"@a:hs\", \"remote3.org\"]",
     PROTO_CMD_RDATA},
    /* §2.3 batch rule restated in the modern layout (same rows, instance added) */
    {"EX-23-04", "P §2.3 (modern layout)", DMO, SRV,
     "RDATA device_lists master batch [\"@a:hs\", \"remote1.org\"]", PROTO_CMD_RDATA},
    /* §2.2 inline examples */
    {"EX-22-01", "P §2.2 SERVER", D18, SRV, "SERVER example.com", PROTO_CMD_SERVER},
    {"EX-22-02", "P §2.2 SERVER", DMO, SRV, "SERVER example.com", PROTO_CMD_SERVER},
    {"EX-22-03", "P §2.2 PING", D18, SRV, "PING 1490197665618", PROTO_CMD_PING},
    {"EX-22-04", "P §2.2 ERROR table", DMO, CLI, "ERROR ping timeout", PROTO_CMD_ERROR},
    {"EX-22-05", "P §2.2 ERROR table", D18, SRV, "ERROR ping timeout", PROTO_CMD_ERROR},
    {"EX-22-06", "P §2.2 ERROR table", DMO, CLI, "ERROR invalid command: NAME", PROTO_CMD_ERROR},
    {"EX-22-07", "P §2.2 ERROR table", D18, SRV, "ERROR Failed to keep up", PROTO_CMD_ERROR},
    {"EX-22-08", "P §2.2 ERROR table", DMO, CLI, "ERROR Wrong remote", PROTO_CMD_ERROR},
    {"EX-22-09", "P §2.2 ERROR table", D18, SRV, "ERROR server shutting down", PROTO_CMD_ERROR},
    {"EX-22-10", "P §2.2 ERROR table", DMO, SRV, "ERROR Line length exceeded", PROTO_CMD_ERROR},
    {"EX-22-11", "P §2.2 NAME", D18, CLI, "NAME synapse.app.synchrotron", PROTO_CMD_NAME},
    {"EX-22-12", "P §2.2 NAME", DMO, CLI, "NAME worker1", PROTO_CMD_NAME},
    {"EX-22-13", "P §2.2 REPLICATE (2018)", D18, CLI, "REPLICATE events 53", PROTO_CMD_REPLICATE},
    {"EX-22-14", "P §2.2 RDATA", D18, SRV,
     "RDATA events 14 [\"$ev:hs\", \"!room:hs\", \"m.room.guest_access\", \"\", null]",
     PROTO_CMD_RDATA},
    {"EX-22-15", "P §2.2 RDATA", DMO, SRV,
     "RDATA caches master 550953771 [\"get_user_by_id\",[\"@bob:example.com\"],1550574873251]",
     PROTO_CMD_RDATA},
    {"EX-22-16", "P §2.2 POSITION (2018)", D18, SRV, "POSITION events 1", PROTO_CMD_POSITION},
    {"EX-22-17", "P §2.2 POSITION (modern)", DMO, SRV, "POSITION events master 53 60",
     PROTO_CMD_POSITION},
    {"EX-22-18", "P §2.2 USER_SYNC", D18, CLI, "USER_SYNC @alice:example.com start 1533000000000",
     PROTO_CMD_USER_SYNC},
    {"EX-22-19", "P §2.2 USER_SYNC", DMO, CLI,
     "USER_SYNC AbCdE @alice:example.com DEVICEID start 1533000000000", PROTO_CMD_USER_SYNC},
    {"EX-22-20", "P §2.2 CLEAR_USER_SYNC", DMO, CLI, "CLEAR_USER_SYNC AbCdE",
     PROTO_CMD_CLEAR_USER_SYNC},
    {"EX-22-21", "P §2.2 FEDERATION_ACK", D18, CLI, "FEDERATION_ACK 1234",
     PROTO_CMD_FEDERATION_ACK},
    {"EX-22-22", "P §2.2 FEDERATION_ACK", DMO, CLI, "FEDERATION_ACK fedsender1 1234",
     PROTO_CMD_FEDERATION_ACK},
    {"EX-22-23", "P §2.2 INVALIDATE_CACHE", D18, CLI,
     "INVALIDATE_CACHE get_destination_retry_timings [\"remote.example.org\"]",
     PROTO_CMD_INVALIDATE_CACHE},
    {"EX-22-24", "P §2.2 USER_IP", D18, CLI,
     "USER_IP @alice:example.com [\"syt_abc\", \"10.0.0.1\", \"Mozilla/5.0\", \"DEVICEID\", "
     "1533000000000]",
     PROTO_CMD_USER_IP},
    {"EX-22-25", "P §2.2 USER_IP", DMO, CLI,
     "USER_IP @alice:example.com [\"syt_abc\", \"10.0.0.1\", \"Mozilla/5.0\", \"DEVICEID\", "
     "1533000000000]",
     PROTO_CMD_USER_IP},
    {"EX-22-26", "P §2.2 REMOTE_SERVER_UP", DMO, SRV, "REMOTE_SERVER_UP remote.example.org",
     PROTO_CMD_REMOTE_SERVER_UP},
    {"EX-22-27", "P §2.2 REMOTE_SERVER_UP", DMO, CLI, "REMOTE_SERVER_UP remote.example.org",
     PROTO_CMD_REMOTE_SERVER_UP},
    {"EX-22-28", "P §0 (v1.9-v1.12 2018 added REMOTE_SERVER_UP), R FR-12", D18, SRV,
     "REMOTE_SERVER_UP remote.example.org", PROTO_CMD_REMOTE_SERVER_UP},
    {"EX-22-29", "P §2.1 REMOVE_PUSHER syntax", D18, CLI,
     "REMOVE_PUSHER com.example.app pushkey123 @alice:example.com", PROTO_CMD_REMOVE_PUSHER},
    {"EX-22-30", "P §2.2 SYNC", D18, SRV, "SYNC 12345", PROTO_CMD_SYNC},
    {"EX-22-31", "P §2.2 LOCK_RELEASED", DMO, SRV,
     "LOCK_RELEASED [\"worker1\",\"my_lock\",\"key1\"]", PROTO_CMD_LOCK_RELEASED},
    {"EX-22-32", "P §2.2 NEW_ACTIVE_TASK (Redis)", DMO, ANY, "NEW_ACTIVE_TASK 7c1d9f",
     PROTO_CMD_NEW_ACTIVE_TASK},
    {"EX-22-33", "P §2.2 CANCEL_TASK (Redis)", DMO, ANY, "CANCEL_TASK 7c1d9f",
     PROTO_CMD_CANCEL_TASK},
    /* §4 */
    {"EX-4-01", "P §4.1 presence", D18, SRV,
     "RDATA presence 59 [\"@baz:example.com\", \"online\", 1533000000000, 1533000000000, "
     "1533000000000, null, true]",
     PROTO_CMD_RDATA},
    {"EX-4-02", "P §4.4 events", DMO, SRV,
     "RDATA events master 1001 "
     "[\"ev\",[\"$e:hs\",\"!r:hs\",\"m.room.message\",null,null,null,null,false,false]]",
     PROTO_CMD_RDATA},
    /* §6: a Redis message is the TCP line without the LF, no direction check */
    {"EX-6-01", "P §6 Redis", DMO, ANY, "REPLICATE ", PROTO_CMD_REPLICATE},
    {"EX-6-02", "P §6 Redis", DMO, ANY, "POSITION events master 53 53", PROTO_CMD_POSITION},
};

/* ---- parsed fields --------------------------------------------------------------- */

#define FIELDS_REQ                                                                                \
  "each command's fields are split per its dialect's grammar (§2.2), the last field taking the " \
  "rest"

typedef struct field_case {
  const char *id;
  proto_dialect_t dialect;
  proto_sender_t sender;
  bytes_t line;
  const char *dump; /* describe() of the parsed command */
  bool round_trip;  /* format(parse(line)) == line */
} field_case_t;

static const field_case_t field_cases[] = {
    {"FD-01", D18, SRV, B("RDATA device_lists batch [\"@a:hs\", \"remote1.org\"]"),
     "RDATA stream='device_lists' token=batch row='[\"@a:hs\", \"remote1.org\"]'", true},
    {"FD-02", DMO, SRV, B("RDATA events master batch [1]"),
     "RDATA stream='events' instance='master' token=batch row='[1]'", true},
    {"FD-03", D18, SRV, B("RDATA events 9223372036854775807 []"),
     "RDATA stream='events' token=9223372036854775807 row='[]'", true},
    {"FD-04", D18, SRV, B("RDATA events -9223372036854775808 []"),
     "RDATA stream='events' token=-9223372036854775808 row='[]'", true},
    {"FD-05", DMO, SRV, B("RDATA typing master 3 [\"!r:hs\", [\"@\xc3\xa9:hs\"]]  "),
     "RDATA stream='typing' instance='master' token=3 row='[\"!r:hs\", [\"@\xc3\xa9:hs\"]]  '",
     true},
    {"FD-06", DMO, SRV, B("RDATA caches master 4 [\"\\ud83d\\ude00\",\"\\udc00\",\"a b  c\"]"),
     "RDATA stream='caches' instance='master' token=4 "
     "row='[\"\\ud83d\\ude00\",\"\\udc00\",\"a b  c\"]'",
     true},
    {"FD-07", D18, SRV, B("RDATA receipts 2 {\"a\": {\"b\": [true, false, null, -1.5e+3]}}"),
     "RDATA stream='receipts' token=2 row='{\"a\": {\"b\": [true, false, null, -1.5e+3]}}'", true},
    {"FD-08", DMO, SRV, B("POSITION presence_federation master 0 0"),
     "POSITION stream='presence_federation' instance='master' prev=0 new=0", true},
    {"FD-09", DMO, SRV, B("POSITION events master 53 60"),
     "POSITION stream='events' instance='master' prev=53 new=60", true},
    {"FD-10", D18, SRV, B("POSITION typing 0"), "POSITION stream='typing' token=0", true},
    {"FD-11", D18, CLI, B("REPLICATE ALL NOW"), "REPLICATE stream='ALL' token=NOW", true},
    {"FD-12", D18, CLI, B("REPLICATE events now"), "REPLICATE stream='events' token=NOW", false},
    {"FD-13", D18, CLI, B("REPLICATE typing 0"), "REPLICATE stream='typing' token=0", true},
    {"FD-14", DMO, CLI, B("REPLICATE"), "REPLICATE trailing_space=0", true},
    {"FD-15", DMO, CLI, B("REPLICATE "), "REPLICATE trailing_space=1", true},
    /* P §1.3: a 2018 REPLICATE sent to a modern server is accepted, arguments ignored */
    {"FD-16", DMO, CLI, B("REPLICATE events 53"), "REPLICATE trailing_space=0", false},
    {"FD-17", DMO, CLI, B("USER_SYNC JrWAv @alice:test.local start 1795911880839"),
     "USER_SYNC instance='JrWAv' user='@alice:test.local' state=start ms=1795911880839", true},
    {"FD-18", DMO, CLI, B("USER_SYNC AbCdE @alice:example.com None end 1533000000000"),
     "USER_SYNC instance='AbCdE' user='@alice:example.com' device='None' state=end "
     "ms=1533000000000",
     true},
    {"FD-19", D18, CLI, B("USER_SYNC @bob:hs end 0"), "USER_SYNC user='@bob:hs' state=end ms=0",
     true},
    {"FD-20", DMO, CLI, B("CLEAR_USER_SYNC AbCdE"), "CLEAR_USER_SYNC instance='AbCdE'", true},
    {"FD-21", D18, CLI, B("FEDERATION_ACK 0"), "FEDERATION_ACK token=0", true},
    {"FD-22", DMO, CLI, B("FEDERATION_ACK fedsender1 1234"),
     "FEDERATION_ACK instance='fedsender1' token=1234", true},
    {"FD-23", D18, CLI, B("REMOVE_PUSHER m.http key @user with spaces:hs"),
     "REMOVE_PUSHER app='m.http' key='key' user='@user with spaces:hs'", true},
    {"FD-24", D18, CLI, B("INVALIDATE_CACHE get_users_in_room null"),
     "INVALIDATE_CACHE cache_func='get_users_in_room' keys='null'", true},
    {"FD-25", DMO, CLI, B("USER_IP @a:hs [\"t\",\"1.2.3.4\",\"ua\",null,5]"),
     "USER_IP user='@a:hs' row='[\"t\",\"1.2.3.4\",\"ua\",null,5]'", true},
    {"FD-26", DMO, CLI, B("LOCK_RELEASED [\"w1\", \"n\", \"k\"]"),
     "LOCK_RELEASED row='[\"w1\", \"n\", \"k\"]'", true},
    {"FD-27", DMO, SRV, B("PING"), "PING text='' trailing_space=0", true},
    {"FD-28", DMO, SRV, B("PING "), "PING text='' trailing_space=1", true},
    {"FD-29", D18, SRV, B("PING "), "PING text='' trailing_space=1", true},
    {"FD-30", DMO, SRV, B("PING a\tb  c"), "PING text='a\\tb  c' trailing_space=0", true},
    {"FD-31", DMO, CLI, B("ERROR failed to parse line: KeyError('HELLO') ('HELLO world'):"),
     "ERROR text='failed to parse line: KeyError('HELLO') ('HELLO world'):' trailing_space=0",
     true},
    {"FD-32", D18, SRV, B("SERVER a b"), "SERVER text='a b' trailing_space=0", true},
    {"FD-33", DMO, ANY, B("NEW_ACTIVE_TASK abc"), "NEW_ACTIVE_TASK text='abc' trailing_space=0",
     true},
    {"FD-34", DMO, ANY, B("CANCEL_TASK \"quoted\""),
     "CANCEL_TASK text='\"quoted\"' trailing_space=0", true},
    {"FD-35", D18, ANY, B("SYNC abc"), "SYNC text='abc' trailing_space=0", true},
    {"FD-36", D18, CLI, B("REMOTE_SERVER_UP remote.example.org"),
     "REMOTE_SERVER_UP text='remote.example.org' trailing_space=0", true},
    {"FD-37", DMO, CLI, B("NAME"), "NAME text='' trailing_space=0", true},
    {"FD-38", D18, SRV, B("RDATA events 007 []"), "RDATA stream='events' token=7 row='[]'", false},
    {"FD-39", DMO, SRV, B("RDATA events master 5 \t[1]\t"),
     "RDATA stream='events' instance='master' token=5 row='\\t[1]\\t'", true},
    {"FD-40", DMO, SRV, B("SERVER \xe2\x82\xac\xf0\x9f\x98\x80"),
     "SERVER text='\xe2\x82\xac\xf0\x9f\x98\x80' trailing_space=0", true},
};

/* ---- malformed input --------------------------------------------------------------- */

#define BAD_REQ                                                                                \
  "a malformed line is refused with the code Synapse's order of checks implies and a message " \
  "naming command, field and expectation"

typedef struct bad_case {
  const char *id;
  proto_dialect_t dialect;
  proto_sender_t sender;
  bytes_t line;
  proto_error_code_t code;
  const char *field;    /* expected err.field, NULL = not checked */
  const char *fragment; /* must appear in err.message */
} bad_case_t;

#define UNK PROTO_ERR_UNKNOWN_COMMAND
#define DIR PROTO_ERR_WRONG_DIRECTION
#define BAD PROTO_ERR_BAD_FIELD
#define BYT PROTO_ERR_BAD_BYTES
#define BLK PROTO_ERR_BLANK

static const bad_case_t bad_cases[] = {
    /* blank lines (P §1.2 step 1) */
    {"BL-01", DMO, SRV, B(""), BLK, "line", "blank"},
    {"BL-02", D18, SRV, B("   "), BLK, "line", "blank"},
    {"BL-03", DMO, CLI, B("\t \r\v\f"), BLK, "line", "blank"},
    {"BL-04", D18, CLI, B("\r"), BLK, "line", "blank"},
    /* unknown names (P §1.2: modern step 3, 2018 step 3) */
    {"UN-01", DMO, SRV, B("HELLO world"), UNK, "name", "got 'HELLO'"},
    {"UN-02", D18, SRV, B("HELLO world"), UNK, "name", "2018 dialect"},
    {"UN-03", DMO, CLI, B("HELLO"), UNK, "name", "modern dialect"},
    {"UN-04", DMO, SRV, B("SYNC 1"), UNK, "name", "got 'SYNC'"},
    {"UN-05", DMO, CLI, B("INVALIDATE_CACHE f []"), UNK, "name", "INVALIDATE_CACHE"},
    {"UN-06", DMO, CLI, B("REMOVE_PUSHER a b c"), UNK, "name", "REMOVE_PUSHER"},
    {"UN-07", D18, CLI, B("CLEAR_USER_SYNC AbCdE"), UNK, "name", "CLEAR_USER_SYNC"},
    {"UN-08", D18, SRV, B("LOCK_RELEASED [\"a\",\"b\",\"c\"]"), UNK, "name", "LOCK_RELEASED"},
    {"UN-09", D18, SRV, B("NEW_ACTIVE_TASK t"), UNK, "name", "NEW_ACTIVE_TASK"},
    {"UN-10", D18, ANY, B("CANCEL_TASK t"), UNK, "name", "CANCEL_TASK"},
    {"UN-11", DMO, SRV, B("ping 1"), UNK, "name", "'ping'"},
    {"UN-12", DMO, SRV, B(" PING 1"), UNK, "name", "got ''"},
    {"UN-13", DMO, SRV, B("RDATAX events master 1 []"), UNK, "name", "RDATAX"},
    /* wrong direction, 2018 server sending client commands (P §2.1 sets) */
    {"WD-01", D18, SRV, B("NAME x"), DIR, "name", "client only"},
    {"WD-02", D18, SRV, B("REPLICATE events 1"), DIR, "name", "server may send"},
    {"WD-03", D18, SRV, B("USER_SYNC @a:hs start 1"), DIR, "name", "USER_SYNC"},
    {"WD-04", D18, SRV, B("FEDERATION_ACK 1"), DIR, "name", "FEDERATION_ACK"},
    {"WD-05", D18, SRV, B("REMOVE_PUSHER a b c"), DIR, "name", "REMOVE_PUSHER"},
    {"WD-06", D18, SRV, B("INVALIDATE_CACHE f []"), DIR, "name", "INVALIDATE_CACHE"},
    {"WD-07", D18, SRV, B("USER_IP @a:hs [1,2,3,4,5]"), DIR, "name", "USER_IP"},
    /* 2018 client sending server commands; SYNC is server-only in code (P §2.1) */
    {"WD-08", D18, CLI, B("SERVER hs"), DIR, "name", "server only"},
    {"WD-09", D18, CLI, B("RDATA events 1 []"), DIR, "name", "client may send"},
    {"WD-10", D18, CLI, B("POSITION events 1"), DIR, "name", "POSITION"},
    {"WD-11", D18, CLI, B("SYNC x"), DIR, "name", "SYNC"},
    /* 2018 checks direction before the fields (P §1.2 steps 3 and 5) */
    {"WD-12", D18, SRV, B("USER_SYNC @a:hs stop x"), DIR, "name", "USER_SYNC"},
    /* modern server sending client commands [T 1.66/fake-main c5] */
    {"WD-13", DMO, SRV, B("NAME fakemain"), DIR, "name", "client only"},
    {"WD-14", DMO, SRV, B("REPLICATE "), DIR, "name", "REPLICATE"},
    {"WD-15", DMO, SRV, B("USER_SYNC X @a:hs start 1"), DIR, "name", "USER_SYNC"},
    {"WD-16", DMO, SRV, B("CLEAR_USER_SYNC X"), DIR, "name", "CLEAR_USER_SYNC"},
    {"WD-17", DMO, SRV, B("FEDERATION_ACK fs 1"), DIR, "name", "FEDERATION_ACK"},
    {"WD-18", DMO, SRV, B("USER_IP @a:hs [1,2,3,4,5]"), DIR, "name", "USER_IP"},
    /* modern client sending server commands [T 1.66/main-no-ping] */
    {"WD-19", DMO, CLI, B("SERVER impostor"), DIR, "name", "server only"},
    {"WD-20", DMO, CLI, B("RDATA events master 1 []"), DIR, "name", "RDATA"},
    {"WD-21", DMO, CLI, B("POSITION events master 1 1"), DIR, "name", "POSITION"},
    /* Redis-only commands are in neither TCP set (P §2.1) */
    {"WD-22", DMO, SRV, B("NEW_ACTIVE_TASK t1"), DIR, "name", "Redis only"},
    {"WD-23", DMO, CLI, B("NEW_ACTIVE_TASK t1"), DIR, "name", "Redis only"},
    {"WD-24", DMO, SRV, B("CANCEL_TASK t1"), DIR, "name", "Redis only"},
    {"WD-25", DMO, CLI, B("CANCEL_TASK t1"), DIR, "name", "Redis only"},
    /* modern parses the fields before checking direction (P §1.2 modern steps 3-4) */
    {"WD-26", DMO, SRV, B("USER_SYNC X @a:hs stop 1"), BAD, "state", "'start' or 'end'"},
    /* 2018: a line without a space never gets past the split (P §1.2 step 2) */
    {"NS-01", D18, SRV, B("PING"), BAD, "data", "without a space"},
    {"NS-02", D18, CLI, B("REPLICATE"), BAD, "data", "REPLICATE"},
    {"NS-03", D18, SRV, B("HELLO"), BAD, "data", "HELLO"},
    {"NS-04", D18, SRV, B("NAME"), BAD, "data", "2018 lines"},
    /* RDATA, 2018 */
    {"RD-01", D18, SRV, B("RDATA events x1 []"), BAD, "token",
     "RDATA: field 'token' must be a decimal integer or 'batch', got 'x1'"},
    {"RD-02", D18, SRV, B("RDATA events 5"), BAD, "row", "field 'row' is missing"},
    {"RD-03", D18, SRV, B("RDATA events"), BAD, "token", "field 'token' is missing"},
    {"RD-04", D18, SRV, B("RDATA "), BAD, "stream", "field 'stream' is missing"},
    {"RD-05", D18, SRV, B("RDATA events +5 []"), BAD, "token", "without '+'"},
    {"RD-06", D18, SRV, B("RDATA events  []"), BAD, "token", "got ''"},
    {"RD-07", D18, SRV, B("RDATA  5 []"), BAD, "stream", "must not be empty"},
    {"RD-08", D18, SRV, B("RDATA events 9223372036854775808 []"), BAD, "token", "got '92233"},
    {"RD-09", D18, SRV, B("RDATA events BATCH []"), BAD, "token", "'batch'"},
    {"RD-10", D18, SRV, B("RDATA events 5 [1] x"), BAD, "row", "unexpected data after"},
    {"RD-11", D18, SRV, B("RDATA events 5 "), BAD, "row", "got nothing"},
    {"RD-12", D18, SRV, B("RDATA events 1.5 []"), BAD, "token", "got '1.5'"},
    /* RDATA, modern [T 1.66/fake-main c4] */
    {"RD-13", DMO, SRV, B("RDATA presence master 99 {not json"), BAD, "row",
     "field 'row' must be valid JSON"},
    {"RD-14", DMO, SRV, B("RDATA events 5 []"), BAD, "row", "field 'row' is missing"},
    {"RD-15", DMO, SRV, B("RDATA events master x []"), BAD, "token", "or 'batch', got 'x'"},
    {"RD-16", DMO, SRV, B("RDATA events  5 []"), BAD, "instance", "must not be empty"},
    {"RD-17", DMO, SRV, B("RDATA"), BAD, "stream", "modern RDATA is 'RDATA <stream> <instance>"},
    /* POSITION */
    {"PO-01", D18, SRV, B("POSITION events"), BAD, "token", "field 'token' is missing"},
    {"PO-02", D18, SRV, B("POSITION events x"), BAD, "token", "decimal integer, got 'x'"},
    {"PO-03", D18, SRV, B("POSITION events 1 2"), BAD, "token", "too many fields"},
    {"PO-04", DMO, SRV, B("POSITION events master 1"), BAD, "new_token", "is missing"},
    {"PO-05", DMO, SRV, B("POSITION events 1"), BAD, "prev_token", "is missing"},
    {"PO-06", DMO, SRV, B("POSITION events master 1 2 3"), BAD, "new_token",
     "too many fields: modern POSITION is 'POSITION <stream> <instance> <prev_token> <new_token>'"},
    {"PO-07", DMO, SRV, B("POSITION events master x 2"), BAD, "prev_token", "got 'x'"},
    {"PO-08", DMO, SRV, B("POSITION events master 1 -"), BAD, "new_token", "got '-'"},
    {"PO-09", DMO, SRV, B("POSITION events master 1 99999999999999999999"), BAD, "new_token",
     "fits in 64 bits"},
    {"PO-10", DMO, SRV, B("POSITION  master 1 1"), BAD, "stream", "must not be empty"},
    /* REPLICATE, 2018 (a modern "REPLICATE " at a 2018 server, P §1.3 dialect mismatch) */
    {"RE-01", D18, CLI, B("REPLICATE "), BAD, "stream", "is missing"},
    {"RE-02", D18, CLI, B("REPLICATE events"), BAD, "token", "is missing"},
    {"RE-03", D18, CLI, B("REPLICATE events later"), BAD, "token", "'NOW' or 'now'"},
    {"RE-04", D18, CLI, B("REPLICATE events Now"), BAD, "token", "got 'Now'"},
    {"RE-05", D18, CLI, B("REPLICATE events 1 2"), BAD, "token", "too many fields"},
    /* USER_SYNC (state is start|end only, P §2.2) */
    {"US-01", D18, CLI, B("USER_SYNC @a:hs stop 1"), BAD, "state",
     "USER_SYNC: field 'state' must be 'start' or 'end', got 'stop'"},
    {"US-02", D18, CLI, B("USER_SYNC @a:hs start"), BAD, "last_sync_ms", "is missing"},
    {"US-03", D18, CLI, B("USER_SYNC @a:hs start x"), BAD, "last_sync_ms", "got 'x'"},
    {"US-04", D18, CLI, B("USER_SYNC @a:hs start 1 2"), BAD, "last_sync_ms", "too many fields"},
    {"US-05", DMO, CLI, B("USER_SYNC AbCdE @a:hs start"), BAD, "last_sync_ms", "is missing"},
    {"US-06", DMO, CLI, B("USER_SYNC AbCdE @a:hs DEV stop 1"), BAD, "state", "got 'stop'"},
    {"US-07", DMO, CLI, B("USER_SYNC AbCdE @a:hs DEV start 1 2"), BAD, "last_sync_ms",
     "too many fields"},
    {"US-08", DMO, CLI, B("USER_SYNC AbCdE  start 1"), BAD, "user_id", "must not be empty"},
    {"US-09", DMO, CLI, B("USER_SYNC AbCdE @a:hs  start 1"), BAD, "device_id", "must not be empty"},
    {"US-10", DMO, CLI, B("USER_SYNC AbCdE @a:hs START 1"), BAD, "state", "got 'START'"},
    /* CLEAR_USER_SYNC, FEDERATION_ACK, REMOVE_PUSHER, INVALIDATE_CACHE */
    {"CU-01", DMO, CLI, B("CLEAR_USER_SYNC "), BAD, "instance", "is missing"},
    {"FA-01", D18, CLI, B("FEDERATION_ACK x"), BAD, "token", "got 'x'"},
    {"FA-02", D18, CLI, B("FEDERATION_ACK "), BAD, "token", "is missing"},
    {"FA-03", D18, CLI, B("FEDERATION_ACK 1 2"), BAD, "token", "too many fields"},
    {"FA-04", DMO, CLI, B("FEDERATION_ACK 1234"), BAD, "token", "is missing"},
    {"FA-05", DMO, CLI, B("FEDERATION_ACK fs 0x10"), BAD, "token", "got '0x10'"},
    {"RP-01", D18, CLI, B("REMOVE_PUSHER a b"), BAD, "user_id", "is missing"},
    {"RP-02", D18, CLI, B("REMOVE_PUSHER a  c"), BAD, "push_key", "must not be empty"},
    {"IC-01", D18, CLI, B("INVALIDATE_CACHE f"), BAD, "keys", "is missing"},
    {"IC-02", D18, CLI, B("INVALIDATE_CACHE f [1,"), BAD, "keys", "valid JSON"},
    {"IC-03", D18, CLI, B("INVALIDATE_CACHE  [1]"), BAD, "cache_func", "must not be empty"},
    /* USER_IP: Synapse unpacks exactly 5 values (P §2.2) */
    {"UI-01", D18, CLI, B("USER_IP @a:hs"), BAD, "row", "is missing"},
    {"UI-02", D18, CLI, B("USER_IP @a:hs [1,2]"), BAD, "row", "got an array of 2 items"},
    {"UI-03", DMO, CLI, B("USER_IP @a:hs {}"), BAD, "row", "got an object"},
    {"UI-04", DMO, CLI, B("USER_IP @a:hs not-json"), BAD, "row", "valid JSON"},
    {"UI-05", DMO, CLI, B("USER_IP @a:hs [1,2,3,4,[5,6]]x"), BAD, "row", "unexpected data"},
    /* LOCK_RELEASED: [instance, lock_name, lock_key] */
    {"LR-01", DMO, SRV, B("LOCK_RELEASED [\"a\",\"b\"]"), BAD, "row", "got an array of 2 items"},
    {"LR-02", DMO, SRV, B("LOCK_RELEASED "), BAD, "row", "is missing"},
    {"LR-03", DMO, CLI, B("LOCK_RELEASED [\"a\",\"b\",\"c\""), BAD, "row", "valid JSON"},
    {"LR-04", DMO, CLI, B("LOCK_RELEASED \"abc\""), BAD, "row", "got a string"},
    /* integers: decimal int64 only */
    {"IN-01", D18, SRV, B("POSITION events -"), BAD, "token", "got '-'"},
    {"IN-02", D18, SRV, B("POSITION events --1"), BAD, "token", "got '--1'"},
    {"IN-03", D18, SRV, B("POSITION events 1e3"), BAD, "token", "got '1e3'"},
    {"IN-04", D18, SRV, B("POSITION events  1"), BAD, "token", "got ' 1'"},
    {"IN-05", D18, SRV, B("POSITION events \xef\xbc\x91"), BAD, "token", "decimal integer"},
    {"IN-06", D18, SRV, B("POSITION events -9223372036854775809"), BAD, "token", "fits in 64 bits"},
    {"IN-07", D18, SRV, B("POSITION events 18446744073709551616"), BAD, "token", "fits in 64 bits"},
    {"IN-08", D18, SRV, B("POSITION events 1\t"), BAD, "token", "decimal integer"},
    {"IN-09", DMO, CLI, B("USER_SYNC X @a:hs start +1"), BAD, "last_sync_ms", "'+' sign"},
    /* JSON in RDATA rows, many ways to be wrong (RFC 8259, no NaN/Infinity) */
    {"JS-01", DMO, SRV, B("RDATA s m 1 [NaN]"), BAD, "row", "NaN and Infinity"},
    {"JS-02", DMO, SRV, B("RDATA s m 1 [Infinity]"), BAD, "row", "NaN and Infinity"},
    {"JS-03", DMO, SRV, B("RDATA s m 1 [-Infinity]"), BAD, "row", "NaN and Infinity"},
    {"JS-04", DMO, SRV, B("RDATA s m 1 ['a']"), BAD, "row", "expected a JSON value"},
    {"JS-05", DMO, SRV, B("RDATA s m 1 [1,]"), BAD, "row", "expected a JSON value"},
    {"JS-06", DMO, SRV, B("RDATA s m 1 [01]"), BAD, "row", "leading zero"},
    {"JS-07", DMO, SRV, B("RDATA s m 1 [.5]"), BAD, "row", "expected a JSON value"},
    {"JS-08", DMO, SRV, B("RDATA s m 1 [1.]"), BAD, "row", "after the decimal point"},
    {"JS-09", DMO, SRV, B("RDATA s m 1 [1e]"), BAD, "row", "exponent"},
    {"JS-10", DMO, SRV, B("RDATA s m 1 [\"a\tb\"]"), BAD, "row", "control character"},
    {"JS-11", DMO, SRV, B("RDATA s m 1 [\"\\x41\"]"), BAD, "row", "invalid escape"},
    {"JS-12", DMO, SRV, B("RDATA s m 1 [\"\\u12\"]"), BAD, "row", "four hex digits"},
    {"JS-13", DMO, SRV, B("RDATA s m 1 [\"abc]"), BAD, "row", "unterminated string"},
    {"JS-14", DMO, SRV, B("RDATA s m 1 [1, 2"), BAD, "row", "expected ',' or ']'"},
    {"JS-15", DMO, SRV, B("RDATA s m 1 [}"), BAD, "row", "expected a JSON value"},
    {"JS-16", DMO, SRV, B("RDATA s m 1 [1]]"), BAD, "row", "unexpected data"},
    {"JS-17", DMO, SRV, B("RDATA s m 1 {\"a\" 1}"), BAD, "row", "expected ':'"},
    {"JS-18", DMO, SRV, B("RDATA s m 1 {a: 1}"), BAD, "row", "object key"},
    {"JS-19", DMO, SRV, B("RDATA s m 1 {\"a\": 1,}"), BAD, "row", "object key"},
    {"JS-20", DMO, SRV, B("RDATA s m 1 [True]"), BAD, "row", "expected a JSON value"},
    {"JS-21", DMO, SRV, B("RDATA s m 1 [nul]"), BAD, "row", "invalid literal"},
    {"JS-22", DMO, SRV, B("RDATA s m 1 [1] /* c */"), BAD, "row", "unexpected data"},
    {"JS-23", DMO, SRV, B("RDATA s m 1 {\"a\": 1 \"b\": 2}"), BAD, "row", "',' or '}'"},
    {"JS-24", DMO, SRV, B("RDATA s m 1 [-]"), BAD, "row", "expected a digit"},
    {"JS-25", DMO, SRV, B("RDATA s m 1 \"\\"), BAD, "row", "unterminated string"},
    /* bytes: valid UTF-8, no NUL, CR or LF inside a line (BAD_BYTES wins over all else) */
    {"BY-01", DMO, SRV, B("PING a\0b"), BYT, "text", "a NUL byte at byte 6"},
    {"BY-02", DMO, SRV, B("PING 1\r"), BYT, "text", "a CR"},
    {"BY-03", D18, SRV, B("PING 1\n2"), BYT, "text", "a LF"},
    {"BY-04", DMO, SRV, B("PING \xff"), BYT, "text", "ill-formed UTF-8 (byte 0xff)"},
    {"BY-05", DMO, SRV, B("PING \xc0\xaf"), BYT, "text", "0xc0"},
    {"BY-06", DMO, SRV, B("PING \xed\xa0\x80"), BYT, "text", "0xed"},
    {"BY-07", DMO, SRV, B("PING \xf4\x90\x80\x80"), BYT, "text", "0xf4"},
    {"BY-08", DMO, SRV, B("PING \xe2\x82"), BYT, "text", "0xe2"},
    {"BY-09", DMO, SRV, B("PING \x80"), BYT, "text", "0x80"},
    {"BY-10", DMO, SRV, B("HELLO\xff world"), BYT, "name", "ill-formed UTF-8"},
    {"BY-11", D18, SRV, B("NAME \xfe"), BYT, "text", "ill-formed UTF-8"},
    {"BY-12", D18, SRV, B("PI\xffNG"), BYT, "name", "ill-formed UTF-8"},
    {"BY-13", DMO, SRV, B("RDATA s m 1 [\"a\0\"]"), BYT, "row", "NUL"},
    {"BY-14", DMO, SRV, B("RDATA s m 1 [\"\xff\"]"), BYT, "row", "ill-formed UTF-8"},
    {"BY-15", DMO, SRV, B("RDATA s m 1 [1]\r"), BYT, "row", "a CR"},
    {"BY-16", DMO, SRV, B("RDATA s m 1 [1,\r2]"), BYT, "row", "a CR"},
    {"BY-17", DMO, SRV, B("RDATA s\xff m 1 [1]"), BYT, "stream", "ill-formed UTF-8"},
    {"BY-18", D18, SRV, B("RDATA s x\xff []"), BYT, "token", "ill-formed UTF-8"},
    {"BY-19", DMO, SRV, B("RDATA s m 1 [\"\xed\xbf\xbf\"]"), BYT, "row", "ill-formed UTF-8"},
    {"BY-20", DMO, SRV, B("USER_IP @a:hs [1,2,3,4,5]\0"), BYT, "row", "NUL"},
};

/* ---- JSON validator ------------------------------------------------------------------ */

#define JSON_REQ                                                                               \
  "proto_json_valid accepts exactly one RFC 8259 value (no NaN/Infinity, depth <= 256, valid " \
  "UTF-8 in strings)"

typedef struct json_case {
  const char *id;
  bytes_t text;
  bool valid;
  long bad_offset; /* -1: not checked */
} json_case_t;

static const json_case_t json_cases[] = {
    {"JV-01", B("[]"), true, -1},
    {"JV-02", B("{}"), true, -1},
    {"JV-03", B(" \t\r\n[1, 2.5, -3e10, 0, -0, 1E+2, 1e-2, true, false, null] \n"), true, -1},
    {"JV-04", B("{\"a\":{\"b\":[{\"c\":\"d\"}]},\"e\":\"\"}"), true, -1},
    {"JV-05", B("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\\udc00\""), true, -1},
    {"JV-06", B("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\""), true, -1},
    {"JV-07", B("123456789012345678901234567890"), true, -1},
    {"JV-08", B("\"${SN:-test.local}\""), true, -1},
    {"JV-09", B("null"), true, -1},
    {"JV-10", B("\"a long string of forty-odd ASCII bytes to use the fast path\""), true, -1},
    {"JV-11", B(""), false, 0},
    {"JV-12", B("   "), false, 3},
    {"JV-13", B("NaN"), false, 0},
    {"JV-14", B("[1,Infinity]"), false, 3},
    {"JV-15", B("[1] [2]"), false, 4},
    {"JV-16", B("{\"a\":1"), false, 6},
    {"JV-17", B("\"\x01\""), false, 1},
    {"JV-18", B("\"\xc3\""), false, 1},
    {"JV-19", B("\"abcdefghijklmnop\xf0\x9f\x98\""), false, 17},
    {"JV-20", B("[\"\\u00G0\"]"), false, 2},
    {"JV-21", B("-01"), false, 2},
    {"JV-22", B("+1"), false, 0},
    {"JV-23", B("[1 2]"), false, 3},
    {"JV-24", B("\xef\xbb\xbf[]"), false, 0},
    {"JV-25", B("[\"a\"\0]"), false, 4},
    {"JV-26", B("{\"a\":}"), false, 5},
    {"JV-27", B("{1:2}"), false, 1},
    {"JV-28", B("tru"), false, 0},
    {"JV-29", B("\"\\"), false, 2},
    {"JV-30", B("[\"0123456789abcdef\\q\"]"), false, 18},
};

/* ---- ERROR texts a receiver sends ----------------------------------------------------- */

#define REJECT_REQ \
  "a receiver refuses a line with the ERROR text of its dialect (P §1.2, §2.2 ERROR table)"

typedef struct reject_case {
  const char *id;
  const char *source;
  proto_dialect_t dialect;
  proto_sender_t sender;
  bytes_t line;
  const char *exact;  /* the whole text, or NULL */
  const char *prefix; /* else: the text starts with this ... */
  const char *suffix; /* ... and ends with this */
} reject_case_t;

static const reject_case_t reject_cases[] = {
    {"RJ-01", "T 1.66/fake-main c2", DMO, SRV, B("HELLO world"),
     "failed to parse line: KeyError('HELLO') ('HELLO world'):", NULL, NULL},
    {"RJ-02", "T 1.66/fake-main c5", DMO, SRV, B("NAME fakemain"), "invalid command: NAME", NULL,
     NULL},
    {"RJ-03", "T 1.66/main-no-ping", DMO, CLI, B("SERVER impostor"), "invalid command: SERVER",
     NULL, NULL},
    {"RJ-04", "T 1.66/fake-main c4", DMO, SRV, B("RDATA presence master 99 {not json"), NULL,
     "failed to parse line: RDATA: field 'row' must be valid JSON",
     " ('RDATA presence master 99 {not json'):"},
    {"RJ-05", "P §1.2 2018 step 3", D18, SRV, B("HELLO world"), "invalid command: HELLO", NULL,
     NULL},
    {"RJ-06", "P §1.2 2018 step 3", D18, SRV, B("NAME x"), "invalid command: NAME", NULL, NULL},
    {"RJ-07", "P §1.2 2018 step 3", D18, CLI, B("CLEAR_USER_SYNC AbCdE"),
     "invalid command: CLEAR_USER_SYNC", NULL, NULL},
    {"RJ-08", "P §1.3 dialect mismatch", D18, CLI, B("REPLICATE "), NULL,
     "failed to parse line for  'REPLICATE': REPLICATE: field 'stream' is missing", " (''):"},
    {"RJ-09", "P §1.2 2018 step 5", D18, SRV, B("RDATA events x1 []"),
     "failed to parse line for  'RDATA': RDATA: field 'token' must be a decimal integer or "
     "'batch', got 'x1' ('events x1 []'):",
     NULL, NULL},
    {"RJ-10", "P §1.2 2018 step 2 (dropped, no ERROR)", D18, SRV, B("PING"), "", NULL, NULL},
    {"RJ-11", "P §1.2 2018 step 2 (dropped, no ERROR)", D18, SRV, B("HELLO"), "", NULL, NULL},
    {"RJ-12", "U protocol.py decode outside try (dropped)", DMO, SRV, B("PING \xff"), "", NULL,
     NULL},
    {"RJ-13", "U protocol.py decode (dropped)", D18, SRV, B("NAME \xc3"), "", NULL, NULL},
    {"RJ-14", "P §1.2 step 1 (ignored)", DMO, SRV, B("  "), "", NULL, NULL},
    {"RJ-15", "P §1.2 modern step 4", DMO, SRV, B("NEW_ACTIVE_TASK t"),
     "invalid command: NEW_ACTIVE_TASK", NULL, NULL},
    {"RJ-16", "Python repr: double quotes when the text holds ' only", DMO, CLI,
     B("FEDERATION_ACK it's"), NULL, "failed to parse line: FEDERATION_ACK: field 'token'",
     " (\"FEDERATION_ACK it's\"):"},
    {"RJ-17", "Python repr: both quotes -> single, ' escaped", DMO, CLI,
     B("FEDERATION_ACK it's\"x"), NULL, "failed to parse line: ", " ('FEDERATION_ACK it\\'s\"x'):"},
    {"RJ-18", "Python repr escapes", DMO, SRV, B("RDATA s m x\t1 []"), NULL,
     "failed to parse line: RDATA: field 'token'", " ('RDATA s m x\\t1 []'):"},
    {"RJ-19", "Python repr escapes", DMO, SRV, B("PING a\0b\x01\x7f"), NULL,
     "failed to parse line: PING: field 'text'", " ('PING a\\x00b\\x01\\x7f'):"},
    {"RJ-20", "Python repr keeps printable non-ASCII", DMO, SRV, B("POSITION \xc3\xa9 m x 1"), NULL,
     "failed to parse line: POSITION: field 'prev_token'", " ('POSITION \xc3\xa9 m x 1'):"},
    {"RJ-21", "Python repr escapes non-printable U+00A0, U+2028", DMO, SRV,
     B("POSITION \xc2\xa0\xe2\x80\xa8 m x 1"), NULL,
     "failed to parse line: ", " ('POSITION \\xa0\\u2028 m x 1'):"},
    {"RJ-22", "P §1.2 2018 step 5 (CR is refused by the codec)", D18, SRV, B("PING 1\r"), NULL,
     "failed to parse line for  'PING': PING: field 'text'", " ('1\\r'):"},
    {"RJ-23", "Python repr escapes backslashes", DMO, SRV, B("POSITION a\\b m x 1"), NULL,
     "failed to parse line: ", " ('POSITION a\\\\b m x 1'):"},
};

/* ---- formatting ------------------------------------------------------------------------ */

#define FORMAT_REQ                                                                             \
  "proto_format_command writes '<NAME> <data>' per dialect and refuses fields that would not " \
  "parse back"

typedef struct format_case {
  const char *id;
  proto_dialect_t dialect;
  proto_command_t cmd;
  const char *expected;    /* the line, or NULL when the call must fail */
  proto_error_code_t code; /* when it must fail */
  const char *fragment;    /* in the message, when it must fail */
} format_case_t;

static const format_case_t format_cases[] = {
    {"FO-01",
     D18,
     {.kind = PROTO_CMD_RDATA, .stream = S("events"), .token = 14, .row = S("[1, 2]")},
     "RDATA events 14 [1, 2]",
     PROTO_OK,
     NULL},
    {"FO-02",
     DMO,
     {.kind = PROTO_CMD_RDATA,
      .stream = S("events"),
      .instance = S("master"),
      .token_is_batch = true,
      .row = S("[]")},
     "RDATA events master batch []",
     PROTO_OK,
     NULL},
    {"FO-03",
     DMO,
     {.kind = PROTO_CMD_POSITION,
      .stream = S("events"),
      .instance = S("master"),
      .prev_token = 53,
      .new_token = 60},
     "POSITION events master 53 60",
     PROTO_OK,
     NULL},
    {"FO-04",
     D18,
     {.kind = PROTO_CMD_POSITION, .stream = S("typing"), .token = -1},
     "POSITION typing -1",
     PROTO_OK,
     NULL},
    {"FO-05",
     DMO,
     {.kind = PROTO_CMD_REPLICATE, .trailing_space = true},
     "REPLICATE ",
     PROTO_OK,
     NULL},
    {"FO-06", DMO, {.kind = PROTO_CMD_REPLICATE}, "REPLICATE", PROTO_OK, NULL},
    {"FO-07",
     D18,
     {.kind = PROTO_CMD_REPLICATE, .stream = S("ALL"), .token_is_now = true},
     "REPLICATE ALL NOW",
     PROTO_OK,
     NULL},
    {"FO-08",
     DMO,
     {.kind = PROTO_CMD_USER_SYNC,
      .instance = S("AbCdE"),
      .user_id = S("@a:hs"),
      .has_device_id = true,
      .device_id = S("None"),
      .sync_start = true,
      .last_sync_ms = 7},
     "USER_SYNC AbCdE @a:hs None start 7",
     PROTO_OK,
     NULL},
    {"FO-09",
     DMO,
     {.kind = PROTO_CMD_USER_SYNC,
      .instance = S("AbCdE"),
      .user_id = S("@a:hs"),
      .last_sync_ms = 9},
     "USER_SYNC AbCdE @a:hs end 9",
     PROTO_OK,
     NULL},
    {"FO-10",
     D18,
     {.kind = PROTO_CMD_USER_SYNC,
      .user_id = S("@a:hs"),
      .sync_start = true,
      .last_sync_ms = 1533000000000},
     "USER_SYNC @a:hs start 1533000000000",
     PROTO_OK,
     NULL},
    {"FO-11",
     DMO,
     {.kind = PROTO_CMD_CLEAR_USER_SYNC, .instance = S("AbCdE")},
     "CLEAR_USER_SYNC AbCdE",
     PROTO_OK,
     NULL},
    {"FO-12",
     D18,
     {.kind = PROTO_CMD_FEDERATION_ACK, .token = 1234},
     "FEDERATION_ACK 1234",
     PROTO_OK,
     NULL},
    {"FO-13",
     DMO,
     {.kind = PROTO_CMD_FEDERATION_ACK, .instance = S("fs1"), .token = 5},
     "FEDERATION_ACK fs1 5",
     PROTO_OK,
     NULL},
    {"FO-14",
     D18,
     {.kind = PROTO_CMD_REMOVE_PUSHER, .app_id = S("a"), .push_key = S("k"), .user_id = S("@u:hs")},
     "REMOVE_PUSHER a k @u:hs",
     PROTO_OK,
     NULL},
    {"FO-15",
     D18,
     {.kind = PROTO_CMD_INVALIDATE_CACHE, .cache_func = S("f"), .row = S("[\"k\"]")},
     "INVALIDATE_CACHE f [\"k\"]",
     PROTO_OK,
     NULL},
    {"FO-16",
     DMO,
     {.kind = PROTO_CMD_USER_IP, .user_id = S("@a:hs"), .row = S("[\"t\",\"ip\",\"ua\",null,1]")},
     "USER_IP @a:hs [\"t\",\"ip\",\"ua\",null,1]",
     PROTO_OK,
     NULL},
    {"FO-17",
     DMO,
     {.kind = PROTO_CMD_LOCK_RELEASED, .row = S("[\"w\",\"n\",\"k\"]")},
     "LOCK_RELEASED [\"w\",\"n\",\"k\"]",
     PROTO_OK,
     NULL},
    {"FO-18", DMO, {.kind = PROTO_CMD_PING, .text = S("")}, "PING", PROTO_OK, NULL},
    {"FO-19", D18, {.kind = PROTO_CMD_PING, .trailing_space = true}, "PING ", PROTO_OK, NULL},
    {"FO-20", D18, {.kind = PROTO_CMD_SYNC, .text = S("x y")}, "SYNC x y", PROTO_OK, NULL},
    {"FO-21",
     DMO,
     {.kind = PROTO_CMD_NEW_ACTIVE_TASK, .text = S("t1")},
     "NEW_ACTIVE_TASK t1",
     PROTO_OK,
     NULL},
    {"FO-22",
     D18,
     {.kind = PROTO_CMD_RDATA, .stream = S("s"), .token = INT64_MIN, .row = S("0")},
     "RDATA s -9223372036854775808 0",
     PROTO_OK,
     NULL},
    /* errors */
    {"FE-01",
     DMO,
     {.kind = PROTO_CMD_ERROR, .text = S("a\nb")},
     NULL,
     PROTO_ERR_BAD_BYTES,
     "ERROR: field 'text' must be valid UTF-8 without NUL, CR or LF, got a newline"},
    {"FE-02", DMO, {.kind = PROTO_CMD_PING, .text = S("1\r")}, NULL, PROTO_ERR_BAD_BYTES, "a CR"},
    {"FE-03", DMO, {.kind = PROTO_CMD_NAME, .text = {"a\0b", 3}}, NULL, PROTO_ERR_BAD_BYTES, "NUL"},
    {"FE-04",
     DMO,
     {.kind = PROTO_CMD_SERVER, .text = S("\xff")},
     NULL,
     PROTO_ERR_BAD_BYTES,
     "ill-formed UTF-8"},
    {"FE-05",
     DMO,
     {.kind = PROTO_CMD_RDATA, .stream = S("a b"), .instance = S("m"), .row = S("[]")},
     NULL,
     PROTO_ERR_BAD_FIELD,
     "field 'stream' must not contain a space"},
    {"FE-06",
     DMO,
     {.kind = PROTO_CMD_RDATA, .instance = S("m"), .row = S("[]")},
     NULL,
     PROTO_ERR_BAD_FIELD,
     "field 'stream' must not be empty"},
    {"FE-07",
     D18,
     {.kind = PROTO_CMD_RDATA, .stream = S("s"), .row = S("{not json")},
     NULL,
     PROTO_ERR_BAD_FIELD,
     "field 'row' must be valid JSON"},
    {"FE-08",
     D18,
     {.kind = PROTO_CMD_RDATA, .stream = S("s"), .row = S("[1,\n2]")},
     NULL,
     PROTO_ERR_BAD_BYTES,
     "field 'row'"},
    {"FE-09",
     DMO,
     {.kind = PROTO_CMD_USER_IP, .user_id = S("@a:hs"), .row = S("[1]")},
     NULL,
     PROTO_ERR_BAD_FIELD,
     "a JSON array of 5 items"},
    {"FE-10",
     DMO,
     {.kind = PROTO_CMD_SYNC, .text = S("x")},
     NULL,
     PROTO_ERR_UNKNOWN_COMMAND,
     "modern dialect"},
    {"FE-11",
     D18,
     {.kind = PROTO_CMD_CLEAR_USER_SYNC, .instance = S("x")},
     NULL,
     PROTO_ERR_UNKNOWN_COMMAND,
     "2018 dialect"},
    {"FE-12", D18, {.kind = PROTO_CMD_NONE}, NULL, PROTO_ERR_UNKNOWN_COMMAND, "field 'kind'"},
    {"FE-13", DMO, {.kind = PROTO_CMD_COUNT}, NULL, PROTO_ERR_UNKNOWN_COMMAND, "field 'kind'"},
    {"FE-14",
     D18,
     {.kind = PROTO_CMD_PING},
     NULL,
     PROTO_ERR_BAD_FIELD,
     "must not be empty in the 2018 dialect"},
    {"FE-15",
     DMO,
     {.kind = PROTO_CMD_LOCK_RELEASED, .row = S("[\"a\"]")},
     NULL,
     PROTO_ERR_BAD_FIELD,
     "3 items"},
    {"FE-16",
     DMO,
     {.kind = PROTO_CMD_USER_SYNC,
      .instance = S("I"),
      .user_id = S("@a:hs"),
      .has_device_id = true},
     NULL,
     PROTO_ERR_BAD_FIELD,
     "field 'device_id' must not be empty"},
    {"FE-17",
     DMO,
     {.kind = PROTO_CMD_CLEAR_USER_SYNC},
     NULL,
     PROTO_ERR_BAD_FIELD,
     "field 'instance' must not be empty"},
    {"FE-18",
     D18,
     {.kind = PROTO_CMD_REMOVE_PUSHER, .app_id = S("a"), .push_key = S("k k"), .user_id = S("u")},
     NULL,
     PROTO_ERR_BAD_FIELD,
     "field 'push_key' must not contain a space"},
    {"FE-19",
     DMO,
     {.kind = PROTO_CMD_FEDERATION_ACK, .instance = S("a\rb")},
     NULL,
     PROTO_ERR_BAD_BYTES,
     "field 'instance'"},
};

/* ---- direction sets (P §2.1) ------------------------------------------------------------ */

/* Per dialect: "" = not in the dialect, "S" server may send, "C" client may send,
 * "SC" both, "R" in the dialect but in neither TCP set (Redis only). */
typedef struct direction_row {
  proto_command_kind_t kind;
  const char *in_2018;
  const char *in_modern;
} direction_row_t;

static const direction_row_t direction_rows[] = {
    {PROTO_CMD_SERVER, "S", "S"},
    {PROTO_CMD_RDATA, "S", "S"},
    {PROTO_CMD_POSITION, "S", "S"},
    {PROTO_CMD_ERROR, "SC", "SC"},
    {PROTO_CMD_PING, "SC", "SC"},
    {PROTO_CMD_NAME, "C", "C"},
    {PROTO_CMD_REPLICATE, "C", "C"},
    {PROTO_CMD_USER_SYNC, "C", "C"},
    {PROTO_CMD_CLEAR_USER_SYNC, "", "C"},
    {PROTO_CMD_FEDERATION_ACK, "C", "C"},
    {PROTO_CMD_REMOVE_PUSHER, "C", ""},
    {PROTO_CMD_INVALIDATE_CACHE, "C", ""},
    {PROTO_CMD_USER_IP, "C", "C"},
    {PROTO_CMD_SYNC, "S", ""},
    /* 2018: v1.9-v1.12 (P §0, R FR-02/FR-12); the §2.1 list is v0.33.3's */
    {PROTO_CMD_REMOTE_SERVER_UP, "SC", "SC"},
    {PROTO_CMD_LOCK_RELEASED, "", "SC"},
    {PROTO_CMD_NEW_ACTIVE_TASK, "", "R"},
    {PROTO_CMD_CANCEL_TASK, "", "R"},
};

#endif
