/* fixture: a replayable exchange, parsed (docs/FIXTURES.md, format 1).
 *
 * fixture_load() reads and checks a whole file: the header (requirement metadata, where
 * it applies, how the mock behaves) and the script (steps). Every problem is reported
 * with the file, the line and the field or step ("x.fixture:12: step 'wait': expected
 * milliseconds in 0..600000, got '1s'"); nothing is half-loaded. Placeholders and
 * regular expressions are checked at load; they are filled in when the fixture is
 * played (fixture_play.h).
 *
 * Ownership: fixture_t owns every string and step; free with fixture_destroy().
 * Read-only after load (a loaded fixture may be shared by forked test processes). */
#ifndef FIXTURE_H
#define FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fixture_text.h"
#include "proto.h"
#include "rc_error.h"

#define FIXTURE_FORMAT_VERSION 1
#define FIXTURE_MAX_BYTES (4u << 20)
#define FIXTURE_MAX_LINE 65536
#define FIXTURE_MAX_CONNS 1000
#define FIXTURE_MAX_MS 600000
#define FIXTURE_DEFAULT_DEADLINE_MS 2000

/* Bits of fixture_t.dialects (1u << proto_dialect_t) and .transports. */
#define FIXTURE_DIALECT_2018 (1u << PROTO_DIALECT_2018)
#define FIXTURE_DIALECT_MODERN (1u << PROTO_DIALECT_MODERN)
#define FIXTURE_TRANSPORT_TCP (1u << 1)
#define FIXTURE_TRANSPORT_REDIS (1u << 2)

typedef enum fixture_level {
  FIXTURE_LEVEL_MUST = 1,
  FIXTURE_LEVEL_SHOULD = 2,
} fixture_level_t;

typedef enum fixture_mock_mode {
  FIXTURE_MOCK_MAIN = 1, /* opening, REPLICATE answers, rejections: like a real main */
  FIXTURE_MOCK_SCRIPTED, /* only what the script sends (keepalive aside) */
} fixture_mock_mode_t;

typedef enum fixture_step_kind {
  FIXTURE_STEP_CONNECT = 1,  /* connect cN */
  FIXTURE_STEP_SEND,         /* >, >raw (use RAW), >split K (number = K) */
  FIXTURE_STEP_EXPECT,       /* <, <~, <raw */
  FIXTURE_STEP_EXPECT_NOT,   /* !<, !<~ */
  FIXTURE_STEP_UNORDERED,    /* unordered ... end: children are EXPECT steps */
  FIXTURE_STEP_CLOSE,        /* close (flag false) / reset (flag true) */
  FIXTURE_STEP_STALL,        /* stall MS */
  FIXTURE_STEP_CLOSED,       /* closed [by sut|by mock] [fin|rst] */
  FIXTURE_STEP_OPEN,         /* open */
  FIXTURE_STEP_WAIT,         /* wait MS */
  FIXTURE_STEP_HTTP,         /* http, http~ */
  FIXTURE_STEP_HTTP_NOT,     /* !http, !http~ */
  FIXTURE_STEP_LOG,          /* log~ */
  FIXTURE_STEP_LOG_NOT,      /* !log~ */
  FIXTURE_STEP_PING,         /* ping on|off (flag) */
  FIXTURE_STEP_LISTEN,       /* listen on|off (flag) */
  FIXTURE_STEP_HTTP_FAIL,    /* http-fail STATUS COUNT (number, number2) */
  FIXTURE_STEP_HTTP_DELAY,   /* http-delay MS */
  FIXTURE_STEP_HTTP_PAGE,    /* http-page-size N (number) */
  FIXTURE_STEP_ROW,          /* row STREAM TOKEN JSON */
  FIXTURE_STEP_TERMINATE,    /* terminate: the harness sends the SUT SIGTERM */
  FIXTURE_STEP_METRIC,       /* metric SELECTOR OP VALUE */
  FIXTURE_STEP_METRIC_NOT,   /* !metric SELECTOR [OP VALUE] */
  FIXTURE_STEP_METRIC_MARK,  /* metric-mark SELECTOR */
  FIXTURE_STEP_SUT_HTTP,     /* sut-http METHOD PATH -> CHECK */
  FIXTURE_STEP_REMOTE,       /* remote NAME http|http~|presence ... (fixture_remote.h) */
  FIXTURE_STEP_REMOTE_NOT,   /* !remote NAME http|http~|presence ... */
  FIXTURE_STEP_REMOTE_COUNT, /* remote NAME count USER OP N */
  FIXTURE_STEP_DB,           /* db QUANTITY OP N */
  FIXTURE_STEP_DB_NOT,       /* !db QUANTITY OP N */
} fixture_step_kind_t;

/* Comparisons of metric steps (0: none, "!metric SELECTOR" alone). */
typedef enum fixture_op {
  FIXTURE_OP_NONE = 0,
  FIXTURE_OP_EQ,
  FIXTURE_OP_NE,
  FIXTURE_OP_LT,
  FIXTURE_OP_LE,
  FIXTURE_OP_GT,
  FIXTURE_OP_GE,
} fixture_op_t;

/* What a sut-http step checks of the answer. */
typedef enum fixture_check {
  FIXTURE_CHECK_STATUS = 1,   /* status N (number) */
  FIXTURE_CHECK_HEADER,       /* header NAME: present */
  FIXTURE_CHECK_NO_HEADER,    /* !header NAME: absent */
  FIXTURE_CHECK_HEADER_REGEX, /* header NAME ~ REGEX: one of its values matches */
} fixture_check_t;

/* Side channels a fixture's steps use (fixture_t.needs): a SUT without one cannot be
 * checked by it, and the fixture is skipped for it. */
#define FIXTURE_NEEDS_LOG (1u << 0)
#define FIXTURE_NEEDS_METRICS (1u << 1)
#define FIXTURE_NEEDS_SUT_HTTP (1u << 2)
#define FIXTURE_NEEDS_REMOTES (1u << 3) /* fake federation remotes: role fedsender */
#define FIXTURE_NEEDS_DB (1u << 4)      /* the SUT's database: role pg */

#define FIXTURE_MAX_REMOTES 8

/* Who closed, for FIXTURE_STEP_CLOSED (0 = either). */
enum { FIXTURE_BY_ANY = 0, FIXTURE_BY_MOCK = 1, FIXTURE_BY_SUT = 2 };
/* How, for FIXTURE_STEP_CLOSED (0 = any way). */
enum { FIXTURE_HOW_ANY = 0, FIXTURE_HOW_FIN = 1, FIXTURE_HOW_RST = 2 };

typedef struct fixture_step {
  fixture_step_kind_t kind;
  int line;                      /* 1-based line in the file */
  char *source;                  /* the step as written (trimmed), for traces and messages */
  int conn;                      /* fixture connection number (1..) of connection steps, else 0 */
  int deadline_ms;               /* expectations, connect, closed, http, log, unordered */
  int ms;                        /* wait, stall, http-delay */
  int number;                    /* >split K; http-fail status; http-page-size N */
  int number2;                   /* http-fail count */
  bool flag;                     /* close: reset; ping/listen: on */
  int by;                        /* closed: FIXTURE_BY_* */
  int how;                       /* closed: FIXTURE_HOW_* */
  fixture_text_use_t use;        /* line texts: SEND, RAW, PATTERN or REGEX */
  char *text;                    /* line, pattern or regex (placeholders unexpanded); row JSON */
  char *stream;                  /* row */
  int64_t token;                 /* row */
  struct fixture_step *children; /* unordered */
  size_t child_count;
  /* db, !db: text is the QUANTITY (sessions, idle-in-transaction), op and value N.
   * metric, !metric, metric-mark: text is the selector NAME{LABELS} as written.
   * sut-http: text is the path (placeholders unexpanded), number the status. */
  fixture_op_t op; /* metric, !metric */
  double value;    /* metric, !metric: the number compared with */
  bool relative;   /* metric, !metric: VALUE is mark+value (the latest metric-mark's) */
  char *method;    /* sut-http */
  fixture_check_t check;
  char *header; /* sut-http: header name */
  char *regex;  /* sut-http: header value regex (placeholders unexpanded) */
  /* remote steps: which of fixture_t.remotes, what they look at; text is the request
   * pattern (http, http~: use PATTERN or REGEX) or the user id (presence, count:
   * placeholders unexpanded; "*" any user); state the presence state or NULL; count
   * uses op and value. */
  int remote;
  bool presence; /* remote, !remote: presence updates rather than requests */
  char *state;
} fixture_step_t;

typedef struct fixture_stream {
  char *name;
  int64_t position;
} fixture_stream_t;

typedef struct fixture {
  char *path; /* as given, for messages */
  char *requirements;
  fixture_level_t level;
  char *requirement;
  char *source;
  unsigned dialects;   /* FIXTURE_DIALECT_* */
  unsigned transports; /* FIXTURE_TRANSPORT_* */
  char *roles;         /* comma-separated names as written (checked by the suite), or NULL */
  int roles_line;
  char *needs_paths;  /* "needs-paths": comma-separated paths the profile's http.paths must
                       * list, or NULL */
  char *needs_caches; /* "needs-caches": comma-separated names its "caches" must have, or NULL */
  char *tags; /* comma-separated, or NULL */
  fixture_mock_mode_t mock;
  int ping_interval_ms;      /* -1: the profile's */
  fixture_stream_t *streams; /* empty: the mock's default set */
  size_t stream_count;
  char **ignore; /* patterns of SUT lines expectations skip */
  size_t ignore_count;
  int deadline_ms; /* default deadline */
  bool unexpected_fail;
  char **remotes; /* fake federation remote server names (header `remotes`) */
  size_t remote_count;
  fixture_step_t *steps;
  size_t step_count;
  int conn_count; /* connections the script uses */
  unsigned needs; /* FIXTURE_NEEDS_* */
} fixture_t;

/* Parses text (len bytes) as the fixture at `path` (used in messages). Returns NULL
 * with err "<path>:<line>: field '<name>': ..." / "<path>:<line>: step '<step>': ...". */
fixture_t *fixture_parse(const char *text, size_t len, const char *path, rc_error_t *err);
/* Reads and parses a file; messages and the fixture name it `shown` (NULL: path). */
fixture_t *fixture_load(const char *path, const char *shown, rc_error_t *err);
void fixture_destroy(fixture_t *fixture);

/* "==", "!=", "<", "<=", ">", ">=" ("" for none). */
const char *fixture_op_text(fixture_op_t op);
/* The OP written as word[0..len) (FIXTURE_OP_NONE: not one). */
fixture_op_t fixture_op_parse(const char *word, size_t len);
/* Whether `a OP b` holds (false for FIXTURE_OP_NONE). */
bool fixture_op_holds(fixture_op_t op, double a, double b);

/* "2018", "modern", "2018,modern" into buf. */
const char *fixture_dialects_text(unsigned dialects, char *buf, size_t cap);

#endif
