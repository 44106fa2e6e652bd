#include "fixture_write.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "fixture_text.h"

#define PAUSE_MS 20 /* shorter gaps between the mock's actions are not replayed */
#define MIN_DEADLINE_MS 2000
#define TIMESTAMP_DIGITS 12 /* numbers this long in worker lines are timestamps */
#define MAX_CONNS 1000

typedef struct writer {
  FILE *out;
  const ledger_t *ledger;
  const fixture_write_options_t *o;
  int conn_of[MAX_CONNS + 1]; /* ledger connection id -> fixture cN (0 = unknown) */
  bool closed[MAX_CONNS + 1]; /* by fixture cN */
  int mock_lines[MAX_CONNS + 1];
  int conns;
  int64_t last_ns;    /* time of the previous step's entry */
  uint64_t *consumed; /* entries already written out of order (2018 REPLICATE runs) */
  size_t consumed_count;
  int deadline_ms; /* the deadline in force */
  bool checks;     /* a step that checks something was written */
} writer_t;

static void put(writer_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(writer_t *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(w->out, fmt, ap);
  va_end(ap);
}

static int gap_ms(const writer_t *w, int64_t at_ns) {
  int64_t gap = (at_ns - w->last_ns) / 1000000;
  return gap < 0 ? 0 : gap > FIXTURE_MAX_MS ? FIXTURE_MAX_MS : (int)gap;
}

/* Before one of the mock's actions: the pause that preceded it in the recording. */
static void pause_before(writer_t *w, int64_t at_ns) {
  int gap = gap_ms(w, at_ns);
  if (gap > PAUSE_MS) put(w, "wait %d\n", gap);
}

/* Before an expectation: a deadline of at least twice what the worker took. */
static void deadline_before(writer_t *w, int64_t at_ns) {
  long want = 2L * gap_ms(w, at_ns) + 500;
  if (want < MIN_DEADLINE_MS) want = MIN_DEADLINE_MS;
  if (want > FIXTURE_MAX_MS) want = FIXTURE_MAX_MS;
  if (want != w->deadline_ms) {
    put(w, "deadline %ld\n", want);
    w->deadline_ms = (int)want;
  }
  w->checks = true;
}

static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

/* Whether word occurs at text[i] as a whole name. */
static bool word_at(const char *text, size_t len, size_t i, const char *word) {
  size_t n = word ? strlen(word) : 0;
  if (n == 0 || i + n > len || memcmp(text + i, word, n) != 0) return false;
  return (i == 0 || !name_char(text[i - 1])) && (i + n == len || !name_char(text[i + n]));
}

/* The text of a step: names as placeholders, a literal '${' escaped, and in worker lines
 * long numbers (timestamps) as ${int}. malloc'd. */
static char *placeholders(const writer_t *w, const char *text, size_t len, bool worker) {
  size_t cap = len * 2 + 64, at = 0;
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  for (size_t i = 0; i < len;) {
    const char *rep = NULL;
    size_t skip = 0;
    if (word_at(text, len, i, w->o->server_name)) {
      rep = "${server_name}";
      skip = strlen(w->o->server_name);
    } else if (worker && word_at(text, len, i, w->o->instance_name)) {
      rep = "${instance_name}";
      skip = strlen(w->o->instance_name);
    } else if (text[i] == '$' && i + 1 < len && text[i + 1] == '{') {
      rep = "$${";
      skip = 2;
    } else if (worker && text[i] >= '0' && text[i] <= '9' && (i == 0 || !name_char(text[i - 1]))) {
      size_t d = i;
      while (d < len && text[d] >= '0' && text[d] <= '9') d++;
      if (d - i >= TIMESTAMP_DIGITS && (d == len || !name_char(text[d]))) {
        rep = "${int}";
        skip = d - i;
      }
    }
    const char *piece = rep ? rep : text + i;
    size_t n = rep ? strlen(rep) : 1;
    if (at + n + 1 > cap) {
      cap = cap * 2 + n;
      char *grown = realloc(out, cap);
      if (grown == NULL) {
        free(out);
        return NULL;
      }
      out = grown;
    }
    memcpy(out + at, piece, n);
    at += n;
    i += rep ? skip : 1;
  }
  out[at] = '\0';
  return out;
}

/* Text that a '>' or '<' step can carry as it is: printable UTF-8, no trailing blank. */
static bool plain_text(const char *text, size_t len) {
  if (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t')) return false;
  char *escaped = fixture_text_escape(text, len);
  bool plain = escaped != NULL && strlen(escaped) == len && memcmp(escaped, text, len) == 0;
  free(escaped);
  return plain && memchr(text, '\\', len) == NULL;
}

/* The mock's instance name in a modern RDATA/POSITION line becomes ${writer}. */
static char *mock_text(writer_t *w, const ledger_entry_t *e) {
  proto_command_t cmd;
  char *text = placeholders(w, e->text, e->len, false);
  if (text == NULL || w->o->dialect != PROTO_DIALECT_MODERN || w->o->writer == NULL) return text;
  if (proto_parse_line(w->o->dialect, PROTO_SENDER_SERVER, e->text, e->len, &cmd, NULL) !=
          PROTO_OK ||
      (cmd.kind != PROTO_CMD_RDATA && cmd.kind != PROTO_CMD_POSITION) ||
      !proto_slice_eq(cmd.instance, w->o->writer))
    return text;
  /* "<NAME> <stream> <instance> ...": the third word. */
  char *first = strchr(text, ' ');
  char *second = first ? strchr(first + 1, ' ') : NULL;
  size_t n = strlen(w->o->writer);
  if (second == NULL || strncmp(second + 1, w->o->writer, n) != 0 || second[1 + n] != ' ')
    return text;
  char *out = NULL;
  if (asprintf(&out, "%.*s${writer}%s", (int)(second + 1 - text), text, second + 1 + n) < 0)
    out = NULL;
  free(text);
  return out;
}

static bool consume(writer_t *w, uint64_t seq) {
  uint64_t *grown = realloc(w->consumed, (w->consumed_count + 1) * sizeof *grown);
  if (grown == NULL) return false;
  w->consumed = grown;
  w->consumed[w->consumed_count++] = seq;
  return true;
}

static bool is_consumed(const writer_t *w, uint64_t seq) {
  for (size_t i = 0; i < w->consumed_count; i++)
    if (w->consumed[i] == seq) return true;
  return false;
}

static int conn_number(writer_t *w, int id) {
  return id > 0 && id <= MAX_CONNS ? w->conn_of[id] : 0;
}

/* ---- entries ---------------------------------------------------------------------------- */

static void write_open(writer_t *w, const ledger_entry_t *e) {
  if (e->conn_id <= 0 || e->conn_id > MAX_CONNS || w->conns == MAX_CONNS) return;
  w->conn_of[e->conn_id] = ++w->conns;
  deadline_before(w, e->mono_ns);
  put(w, "connect c%d\n", w->conns);
  w->last_ns = e->mono_ns;
}

/* Consecutive pieces the mock wrote without LF, and the line that completed them. */
static uint64_t write_mock_pieces(writer_t *w, uint64_t seq, int c) {
  const ledger_entry_t *first = ledger_get(w->ledger, seq);
  uint64_t end = seq;
  size_t piece = first->len;
  bool uniform = true;
  const ledger_entry_t *e = first;
  for (; end < w->o->to_seq; end++) {
    e = ledger_get(w->ledger, end);
    if (e->conn_id != first->conn_id || e->kind != LEDGER_LINE || e->side != LEDGER_SIDE_MOCK)
      break;
    if (e->partial && e->len != piece) uniform = false;
    if (!e->partial) {
      uniform = uniform && e->len + 1 <= piece;
      break;
    }
  }
  bool complete = end < w->o->to_seq && e->conn_id == first->conn_id && e->kind == LEDGER_LINE &&
                  e->side == LEDGER_SIDE_MOCK && !e->partial;
  if (complete && uniform && piece > 0) {
    size_t total = 0;
    for (uint64_t s = seq; s <= end; s++) total += ledger_get(w->ledger, s)->len;
    char *bytes = malloc(total + 1);
    if (bytes != NULL) {
      size_t at = 0;
      for (uint64_t s = seq; s <= end; s++) {
        const ledger_entry_t *p = ledger_get(w->ledger, s);
        memcpy(bytes + at, p->text, p->len);
        at += p->len;
      }
      char *text = plain_text(bytes, total) ? placeholders(w, bytes, total, false) : NULL;
      if (text != NULL) {
        pause_before(w, first->mono_ns);
        put(w, "c%d >split %zu %s\n", c, piece, text);
        free(text);
        free(bytes);
        w->last_ns = ledger_get(w->ledger, end)->mono_ns;
        return end + 1;
      }
      free(bytes);
    }
  }
  /* Otherwise each piece as it was written. */
  uint64_t stop = complete ? end + 1 : end;
  for (uint64_t s = seq; s < stop; s++) {
    const ledger_entry_t *p = ledger_get(w->ledger, s);
    char *escaped = fixture_text_escape(p->text, p->len);
    pause_before(w, p->mono_ns);
    put(w, "c%d >raw %s%s\n", c, escaped ? escaped : "", p->partial ? "" : "\\n");
    free(escaped);
    w->last_ns = p->mono_ns;
  }
  return stop;
}

static uint64_t write_mock_line(writer_t *w, uint64_t seq) {
  const ledger_entry_t *e = ledger_get(w->ledger, seq);
  int c = conn_number(w, e->conn_id);
  if (c == 0) return seq + 1;
  if (e->partial) return write_mock_pieces(w, seq, c);
  int nth = ++w->mock_lines[c];
  bool ping = e->len >= 4 && strncmp(e->text, "PING", 4) == 0 && (e->len == 4 || e->text[4] == ' ');
  /* Keepalive is the replaying mock's own job; only the opening PING is scripted. */
  if (ping && nth != 2) return seq + 1;
  pause_before(w, e->mono_ns);
  if (ping) {
    put(w, "c%d > PING ${now_ms}\n", c);
  } else if (!plain_text(e->text, e->len)) {
    char *escaped = fixture_text_escape(e->text, e->len);
    put(w, "c%d >raw %s\\n\n", c, escaped ? escaped : "");
    free(escaped);
  } else {
    char *text = mock_text(w, e);
    put(w, "c%d > %s\n", c, text ? text : "");
    free(text);
  }
  w->last_ns = e->mono_ns;
  return seq + 1;
}

static bool is_replicate_2018(const writer_t *w, const ledger_entry_t *e) {
  return w->o->dialect == PROTO_DIALECT_2018 && e->kind == LEDGER_LINE &&
         e->side == LEDGER_SIDE_SUT && strncmp(e->text, "REPLICATE ", 10) == 0;
}

static void put_worker_line(writer_t *w, int c, const ledger_entry_t *e, const char *indent) {
  if (w->o->dialect == PROTO_DIALECT_MODERN &&
      (strcmp(e->text, "REPLICATE") == 0 || strcmp(e->text, "REPLICATE ") == 0)) {
    put(w, "%sc%d <~ REPLICATE ?\n", indent, c); /* the space is free (F-01) */
  } else if (!plain_text(e->text, e->len)) {
    char *escaped = fixture_text_escape(e->text, e->len);
    put(w, "%sc%d <raw %s\n", indent, c, escaped ? escaped : "");
    free(escaped);
  } else {
    char *text = placeholders(w, e->text, e->len, true);
    put(w, "%sc%d < %s\n", indent, c, text ? text : "");
    free(text);
  }
}

static uint64_t write_worker_line(writer_t *w, uint64_t seq) {
  const ledger_entry_t *e = ledger_get(w->ledger, seq);
  int c = conn_number(w, e->conn_id);
  bool ping = e->len >= 4 && strncmp(e->text, "PING", 4) == 0 && (e->len == 4 || e->text[4] == ' ');
  if (c == 0 || ping) return seq + 1; /* PINGs are ignored by the replay */
  if (!is_replicate_2018(w, e)) {
    deadline_before(w, e->mono_ns);
    put_worker_line(w, c, e, "");
    w->last_ns = e->mono_ns;
    return seq + 1;
  }
  /* 2018 REPLICATE lines come in any order (F-01): the connection's run of them (the
   * mock's answers in between do not end it) is one unordered window, the answers after. */
  size_t first = w->consumed_count;
  const ledger_entry_t *last = e;
  for (uint64_t s = seq; s < w->o->to_seq; s++) {
    const ledger_entry_t *x = ledger_get(w->ledger, s);
    if (x->conn_id != e->conn_id || x->kind == LEDGER_NOTE) continue;
    if (x->kind == LEDGER_LINE && x->side == LEDGER_SIDE_MOCK) continue;
    if (!is_replicate_2018(w, x)) break;
    if (!consume(w, s)) break;
    last = x;
  }
  size_t count = w->consumed_count - first;
  deadline_before(w, last->mono_ns);
  if (count > 1) put(w, "c%d unordered\n", c);
  for (size_t i = first; i < w->consumed_count; i++)
    put_worker_line(w, c, ledger_get(w->ledger, w->consumed[i]), count > 1 ? "  " : "");
  if (count > 1) put(w, "end\n");
  w->last_ns = last->mono_ns;
  return seq + 1;
}

static void write_close(writer_t *w, const ledger_entry_t *e) {
  int c = conn_number(w, e->conn_id);
  if (c == 0) return;
  w->closed[c] = true;
  if (e->side == LEDGER_SIDE_SUT) {
    deadline_before(w, e->mono_ns);
    put(w, "c%d closed by sut\n", c);
  } else {
    pause_before(w, e->mono_ns);
    put(w, "c%d %s\n", c, e->how == LEDGER_CLOSE_RST ? "reset" : "close");
  }
  w->last_ns = e->mono_ns;
}

static void write_http(writer_t *w, const ledger_entry_t *e) {
  static const char prefix[] = "/_synapse/replication/get_repl_stream_updates/";
  char *text = placeholders(w, e->text, e->len, true);
  if (text == NULL) return;
  /* The txn id is the worker's choice: "GET <prefix><stream>/<txn>?...". */
  char *path = strstr(text, prefix);
  char *slash = path ? strchr(path + sizeof prefix - 1, '/') : NULL;
  deadline_before(w, e->mono_ns);
  if (slash != NULL) {
    size_t txn = strcspn(slash + 1, "?");
    put(w, "http %.*s${word}%s\n", (int)(slash + 1 - text), text, slash + 1 + txn);
  } else {
    put(w, "http %s\n", text);
  }
  free(text);
  w->last_ns = e->mono_ns;
}

/* The mock's switches (notes "mock: ..."), as steps. */
static void write_note(writer_t *w, uint64_t seq) {
  const ledger_entry_t *e = ledger_get(w->ledger, seq);
  const char *t = e->text;
  int a, b;
  char word[16];
  const char *step = NULL;
  char buf[64];
  if (strcmp(t, "harness: SIGTERM to the SUT") == 0) {
    pause_before(w, e->mono_ns);
    put(w, "terminate\n");
    w->last_ns = e->mono_ns;
    return;
  }
  if (strncmp(t, "mock: ", 6) != 0) return;
  t += 6;
  if (strcmp(t, "keepalive on") == 0)
    step = "ping on";
  else if (strcmp(t, "keepalive off") == 0)
    step = "ping off";
  else if (strcmp(t, "listener on") == 0)
    step = "listen on";
  else if (strcmp(t, "listener off") == 0)
    step = "listen off";
  else if (sscanf(t, "http fail-next %d %d", &a, &b) == 2)
    snprintf(buf, sizeof buf, "http-fail %d %d", a, b), step = buf;
  else if (sscanf(t, "http delay %d", &a) == 1)
    snprintf(buf, sizeof buf, "http-delay %d", a), step = buf;
  else if (sscanf(t, "http page-size %d", &a) == 1)
    snprintf(buf, sizeof buf, "http-page-size %d", a), step = buf;
  else if (sscanf(t, "c%d %15s", &a, word) == 2 && strcmp(word, "stalled") == 0) {
    /* The stall lasts until the matching "resumed". */
    char resumed[32];
    snprintf(resumed, sizeof resumed, "mock: c%d resumed", a);
    int64_t until = e->mono_ns;
    for (uint64_t s = seq + 1; s < w->o->to_seq; s++) {
      const ledger_entry_t *x = ledger_get(w->ledger, s);
      if (x->kind == LEDGER_NOTE && strcmp(x->text, resumed) == 0) {
        until = x->mono_ns;
        break;
      }
    }
    int c = conn_number(w, a);
    if (c == 0) return;
    snprintf(buf, sizeof buf, "c%d stall %lld", c, (long long)((until - e->mono_ns) / 1000000));
    step = buf;
  }
  if (step == NULL) return;
  pause_before(w, e->mono_ns);
  put(w, "%s\n", step);
  w->last_ns = e->mono_ns;
}

/* ---- the file --------------------------------------------------------------------------- */

static void write_header(writer_t *w) {
  const fixture_write_options_t *o = w->o;
  if (o->comment != NULL) {
    const char *line = o->comment;
    while (*line) {
      size_t n = strcspn(line, "\n");
      put(w, "# %.*s\n", (int)n, line);
      line += n + (line[n] == '\n');
    }
  }
  put(w, "replcheck-fixture: 1\n");
  put(w, "requirements: %s\n", o->requirements);
  put(w, "level: %s\n", o->level);
  put(w, "requirement: %s\n", o->requirement);
  put(w, "source: %s\n", o->source);
  put(w, "dialects: %s\n", proto_dialect_name(o->dialect));
  put(w, "transports: %s\n", o->transport);
  put(w, "tags: recorded%s%s\n", o->tags && o->tags[0] ? "," : "", o->tags ? o->tags : "");
  put(w, "mock: scripted\n");
  if (o->ping_interval_ms >= 0) put(w, "ping-interval: %d\n", o->ping_interval_ms);
  put(w, "unexpected: fail\n");
  /* `stream:` lines replace the mock's default set: written when the recording's set
   * differs from it (given explicitly, or the history has a stream the set lacks). */
  mockhs_config_t defaults;
  mockhs_config_defaults(&defaults, o->dialect, "x");
  const mockhs_stream_t *set = o->streams ? o->streams : defaults.streams;
  size_t set_count = o->streams ? o->stream_count : defaults.stream_count;
  size_t extra = 0;
  size_t streams = o->history ? stream_history_count(o->history) : 0;
  for (size_t i = 0; i < streams; i++) {
    const char *name = stream_history_name(o->history, i);
    bool declared = false;
    for (size_t k = 0; k < set_count; k++) declared = declared || strcmp(set[k].name, name) == 0;
    if (!declared) extra++;
  }
  if (o->streams != NULL || extra > 0) {
    for (size_t i = 0; i < set_count; i++)
      put(w, "stream: %s %lld\n", set[i].name, (long long)set[i].position);
    for (size_t i = 0; i < streams; i++) {
      const char *name = stream_history_name(o->history, i);
      bool declared = false;
      for (size_t k = 0; k < set_count; k++) declared = declared || strcmp(set[k].name, name) == 0;
      if (!declared) put(w, "stream: %s 0\n", name);
    }
  }
  put(w, "\nscript:\n");
  for (size_t i = 0; o->history != NULL && i < stream_history_count(o->history); i++) {
    const char *name = stream_history_name(o->history, i);
    size_t count;
    bool limited, truncated;
    int64_t upto;
    const stream_row_t *rows = stream_history_range(o->history, name, INT64_MIN, INT64_MAX, 0,
                                                    &count, &limited, &upto, &truncated);
    for (size_t r = 0; r < count; r++)
      put(w, "row %s %lld %.*s\n", name, (long long)rows[r].token, (int)rows[r].len, rows[r].json);
  }
}

int fixture_write_ledger(FILE *out, const ledger_t *ledger, const fixture_write_options_t *o,
                         rc_error_t *err) {
  writer_t *w = calloc(1, sizeof *w);
  if (w == NULL) return rc_error_set(err, "out of memory");
  w->out = out;
  w->ledger = ledger;
  w->o = o;
  w->deadline_ms = FIXTURE_DEFAULT_DEADLINE_MS;
  uint64_t from = o->from_seq < ledger_first_seq(ledger) ? ledger_first_seq(ledger) : o->from_seq;
  uint64_t to = o->to_seq > ledger_next_seq(ledger) ? ledger_next_seq(ledger) : o->to_seq;
  fixture_write_options_t bounded = *o;
  bounded.from_seq = from;
  bounded.to_seq = to;
  w->o = &bounded;
  w->last_ns = from < to ? ledger_get(ledger, from)->mono_ns : 0;
  write_header(w);
  for (uint64_t seq = from; seq < to;) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (is_consumed(w, seq)) {
      seq++;
      continue;
    }
    switch (e->kind) {
      case LEDGER_OPEN:
        write_open(w, e);
        seq++;
        break;
      case LEDGER_LINE:
        seq = e->side == LEDGER_SIDE_MOCK ? write_mock_line(w, seq) : write_worker_line(w, seq);
        break;
      case LEDGER_CLOSE:
        write_close(w, e);
        seq++;
        break;
      case LEDGER_HTTP:
        write_http(w, e);
        seq++;
        break;
      case LEDGER_NOTE:
        write_note(w, seq);
        seq++;
        break;
    }
  }
  int64_t end = o->end_ns != 0 ? o->end_ns : w->last_ns;
  if (w->conns > 0) pause_before(w, end);
  for (int c = 1; c <= w->conns; c++) {
    if (w->closed[c]) continue;
    put(w, "c%d open\n", c);
    w->checks = true;
  }
  int rc = 0;
  if (w->conns == 0)
    rc = rc_error_set(err, "nothing to record: the worker never connected");
  else if (ferror(out))
    rc = rc_error_set(err, "write error");
  free(w->consumed);
  free(w);
  return rc;
}
