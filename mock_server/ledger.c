#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_clock.h"
#include "text_fifo.h"

/* Entries live in fixed blocks, so an entry never moves while it is held (tests keep
 * pointers to entries across later appends). blocks[0] holds the oldest block still in
 * use; its first entry has sequence number base_seq. */
#define LEDGER_BLOCK_ENTRIES 1024u
/* Bookkeeping counted per entry besides its text: the slot and the allocator's share. */
#define LEDGER_ENTRY_OVERHEAD (sizeof(ledger_entry_t) + 16u)

struct ledger {
  ledger_entry_t **blocks;
  size_t block_count;
  size_t block_cap;
  uint64_t base_seq; /* sequence number of blocks[0][0] */
  size_t capacity;
  size_t max_bytes;
  size_t bytes;      /* cost of the entries held */
  uint64_t first_seq;
  uint64_t next_seq;
  int64_t origin_ns;
  ledger_drop_fn drop_hook;
  void *drop_arg;
  text_fifo_t *texts; /* the entries' text, tagged by sequence number */
};

ledger_t *ledger_create(size_t capacity) {
  ledger_t *ledger = calloc(1, sizeof *ledger);
  if (ledger == NULL) return NULL;
  ledger->capacity = capacity == 0 ? LEDGER_DEFAULT_CAPACITY : capacity;
  ledger->max_bytes = LEDGER_DEFAULT_MAX_BYTES;
  ledger->first_seq = 1;
  ledger->next_seq = 1;
  ledger->base_seq = 1;
  ledger->origin_ns = rc_clock_mono_ns();
  ledger->texts = text_fifo_create();
  if (ledger->texts == NULL) {
    free(ledger);
    return NULL;
  }
  return ledger;
}

static ledger_entry_t *slot_of(const ledger_t *ledger, uint64_t seq) {
  uint64_t at = seq - ledger->base_seq;
  return &ledger->blocks[at / LEDGER_BLOCK_ENTRIES][at % LEDGER_BLOCK_ENTRIES];
}

void ledger_destroy(ledger_t *ledger) {
  if (ledger == NULL) return;
  text_fifo_destroy(ledger->texts);
  for (size_t i = 0; i < ledger->block_count; i++) free(ledger->blocks[i]);
  free(ledger->blocks);
  free(ledger);
}

size_t ledger_entry_cost(size_t len) { return LEDGER_ENTRY_OVERHEAD + len + 1; }
size_t ledger_bytes_held(const ledger_t *ledger) { return ledger->bytes; }

void ledger_set_drop_hook(ledger_t *ledger, ledger_drop_fn hook, void *arg) {
  ledger->drop_hook = hook;
  ledger->drop_arg = arg;
}

/* Drops the oldest entry, and its block once no entry of it is held. */
static void drop_oldest(ledger_t *ledger) {
  ledger_entry_t *e = slot_of(ledger, ledger->first_seq);
  if (ledger->drop_hook != NULL) ledger->drop_hook(e, ledger->drop_arg);
  ledger->bytes -= ledger_entry_cost(e->len);
  text_fifo_release_through(ledger->texts, e->seq);
  e->text = NULL;
  ledger->first_seq++;
  if (ledger->first_seq - ledger->base_seq == LEDGER_BLOCK_ENTRIES) {
    free(ledger->blocks[0]);
    ledger->block_count--;
    memmove(ledger->blocks, ledger->blocks + 1, ledger->block_count * sizeof *ledger->blocks);
    ledger->base_seq += LEDGER_BLOCK_ENTRIES;
  }
}

/* Drops the oldest entries until `incoming` more bytes and one more entry fit. */
static void make_room(ledger_t *ledger, size_t incoming) {
  while (ledger->next_seq > ledger->first_seq &&
         (ledger->next_seq - ledger->first_seq >= ledger->capacity ||
          ledger->bytes + incoming > ledger->max_bytes))
    drop_oldest(ledger);
}

void ledger_set_max_bytes(ledger_t *ledger, size_t max_bytes) {
  ledger->max_bytes = max_bytes == 0 ? LEDGER_DEFAULT_MAX_BYTES : max_bytes;
  /* Keep the newest entry, as an append would. */
  while (ledger->next_seq - ledger->first_seq > 1 && ledger->bytes > ledger->max_bytes)
    drop_oldest(ledger);
}

/* Makes sure the slot for next_seq exists. */
static int ensure_slot(ledger_t *ledger) {
  uint64_t at = ledger->next_seq - ledger->base_seq;
  if (at / LEDGER_BLOCK_ENTRIES < ledger->block_count) return 0;
  if (ledger->block_count == ledger->block_cap) {
    size_t cap = ledger->block_cap ? ledger->block_cap * 2 : 8;
    ledger_entry_t **grown = realloc(ledger->blocks, cap * sizeof *grown);
    if (grown == NULL) return -1;
    ledger->blocks = grown;
    ledger->block_cap = cap;
  }
  ledger_entry_t *block = malloc(LEDGER_BLOCK_ENTRIES * sizeof *block);
  if (block == NULL) return -1;
  ledger->blocks[ledger->block_count++] = block;
  return 0;
}

static ledger_entry_t *append_at(ledger_t *ledger, int64_t mono_ns, int conn_id, ledger_kind_t kind,
                                 ledger_side_t side, ledger_close_how_t how, const char *text,
                                 size_t len) {
  size_t cost = ledger_entry_cost(len);
  make_room(ledger, cost);
  if (ensure_slot(ledger) != 0) return NULL;
  char *copy = text_fifo_push(ledger->texts, text, len, ledger->next_seq);
  if (copy == NULL) return NULL;
  uint64_t seq = ledger->next_seq++;
  ledger_entry_t *entry = slot_of(ledger, seq);
  *entry = (ledger_entry_t){
      .seq = seq,
      .conn_id = conn_id,
      .kind = kind,
      .side = side,
      .how = how,
      .mono_ns = mono_ns,
      .text = copy,
      .len = len,
  };
  ledger->bytes += cost;
  return entry;
}

const ledger_entry_t *ledger_append(ledger_t *ledger, int conn_id, ledger_kind_t kind,
                                    ledger_side_t side, ledger_close_how_t how, const char *text,
                                    size_t len) {
  return append_at(ledger, rc_clock_mono_ns(), conn_id, kind, side, how, text, len);
}

int ledger_append_lines(ledger_t *ledger, int conn_id, ledger_side_t side, const char *bytes,
                        const size_t *ends, size_t count) {
  int64_t now = rc_clock_mono_ns();
  size_t start = 0;
  for (size_t i = 0; i < count; i++) {
    if (append_at(ledger, now, conn_id, LEDGER_LINE, side, LEDGER_CLOSE_NONE, bytes + start,
                  ends[i] - start) == NULL)
      return -1;
    start = ends[i] + 1;
  }
  return 0;
}

uint64_t ledger_next_seq(const ledger_t *ledger) { return ledger->next_seq; }
uint64_t ledger_first_seq(const ledger_t *ledger) { return ledger->first_seq; }
int64_t ledger_origin_ns(const ledger_t *ledger) { return ledger->origin_ns; }

const ledger_entry_t *ledger_get(const ledger_t *ledger, uint64_t seq) {
  if (seq < ledger->first_seq || seq >= ledger->next_seq) return NULL;
  return slot_of(ledger, seq);
}

const char *ledger_side_name(ledger_side_t side) {
  return side == LEDGER_SIDE_MOCK ? "mock" : "sut";
}

const char *ledger_close_how_name(ledger_close_how_t how) {
  switch (how) {
    case LEDGER_CLOSE_FIN: return "FIN";
    case LEDGER_CLOSE_RST: return "RST";
    case LEDGER_CLOSE_TIMEOUT: return "timeout";
    case LEDGER_CLOSE_ERROR: return "error";
    case LEDGER_CLOSE_NONE: break;
  }
  return "none";
}

/* Copies text with non-printable bytes as \xNN; returns bytes wanted. */
static size_t escape_into(const char *text, size_t len, char *buf, size_t cap, size_t at) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    char piece[5];
    size_t n;
    if (c >= 0x20 && c != 0x7f) {
      piece[0] = (char)c;
      n = 1;
    } else {
      n = (size_t)snprintf(piece, sizeof piece, "\\x%02x", c);
    }
    for (size_t k = 0; k < n; k++, at++) {
      if (at + 1 < cap) buf[at] = piece[k];
    }
  }
  if (cap > 0) buf[at < cap ? at : cap - 1] = '\0';
  return at;
}

/* Appends a C string at *at, keeping buf NUL-terminated within cap. */
static void append_text(char *buf, size_t cap, size_t *at, const char *text) {
  for (; *text; text++, (*at)++)
    if (*at + 1 < cap) buf[*at] = *text;
  if (cap > 0) buf[*at < cap ? *at : cap - 1] = '\0';
}

size_t ledger_format_entry(const ledger_t *ledger, const ledger_entry_t *entry, char *buf,
                           size_t cap) {
  /* Integer arithmetic so no locale can put a comma in the timestamp. */
  long long ms = (entry->mono_ns - ledger->origin_ns + 500000) / 1000000;
  char head[160];
  int n = snprintf(head, sizeof head, "+%4lld.%03lld c%d ", ms / 1000, ms % 1000, entry->conn_id);
  switch (entry->kind) {
    case LEDGER_OPEN:
      snprintf(head + n, sizeof head - (size_t)n, "--- connected from ");
      break;
    case LEDGER_LINE:
      snprintf(head + n, sizeof head - (size_t)n, "%s", entry->side == LEDGER_SIDE_MOCK ? "> " : "< ");
      break;
    case LEDGER_CLOSE:
      snprintf(head + n, sizeof head - (size_t)n, "--- closed by %s (%s)%s",
               ledger_side_name(entry->side), ledger_close_how_name(entry->how),
               entry->len ? ": " : "");
      break;
    case LEDGER_NOTE:
      snprintf(head + n, sizeof head - (size_t)n, "--- ");
      break;
    case LEDGER_HTTP:
      snprintf(head + n, sizeof head - (size_t)n, "<http ");
      break;
  }
  size_t at = 0;
  if (cap > 0) buf[0] = '\0';
  append_text(buf, cap, &at, head);
  at = escape_into(entry->text, entry->len, buf, cap, at);
  if (entry->kind == LEDGER_LINE && entry->partial) append_text(buf, cap, &at, "   [no LF]");
  return at;
}

char *ledger_format_tail(const ledger_t *ledger, size_t max_rows) {
  uint64_t from = ledger->first_seq;
  if (max_rows > 0 && ledger->next_seq - from > max_rows) from = ledger->next_seq - max_rows;
  size_t cap = 256, used = 0;
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  out[0] = '\0';
  if (from > 1 && from == ledger->first_seq) {
    used = (size_t)snprintf(out, cap, "(%llu earlier entries dropped)\n",
                            (unsigned long long)(from - 1));
  }
  char row[600];
  for (uint64_t seq = from; seq < ledger->next_seq; seq++) {
    size_t n = ledger_format_entry(ledger, ledger_get(ledger, seq), row, sizeof row);
    if (n >= sizeof row) n = sizeof row - 1; /* very long lines are cut in evidence */
    if (used + n + 2 > cap) {
      while (used + n + 2 > cap) cap *= 2;
      char *grown = realloc(out, cap);
      if (grown == NULL) {
        free(out);
        return NULL;
      }
      out = grown;
    }
    memcpy(out + used, row, n);
    used += n;
    out[used++] = '\n';
    out[used] = '\0';
  }
  return out;
}
