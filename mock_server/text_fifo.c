#include "text_fifo.h"

#include <stdlib.h>
#include <string.h>

/* Big enough that malloc/free per chunk is noise next to the copies; small enough
 * that the chunk a fifo cannot free yet (one partly released) costs little. */
#define CHUNK_BYTES (64u * 1024u)

typedef struct chunk {
  struct chunk *next; /* the next newer chunk */
  uint64_t last_tag;  /* tag of the newest copy in it */
  size_t used;
  size_t cap;
  char data[];
} chunk_t;

struct text_fifo {
  chunk_t *oldest;
  chunk_t *newest;
  chunk_t *spare; /* one released standard chunk, reused instead of a free and a malloc */
};

text_fifo_t *text_fifo_create(void) {
  return calloc(1, sizeof(text_fifo_t));
}

void text_fifo_destroy(text_fifo_t *fifo) {
  if (fifo == NULL) return;
  for (chunk_t *c = fifo->oldest, *next; c != NULL; c = next) {
    next = c->next;
    free(c);
  }
  free(fifo->spare);
  free(fifo);
}

char *text_fifo_push(text_fifo_t *fifo, const char *bytes, size_t len, uint64_t tag) {
  chunk_t *c = fifo->newest;
  if (c == NULL || c->cap - c->used < len + 1) {
    /* A long copy gets a chunk of its own size, so it never strands a big chunk. */
    size_t cap = len + 1 > CHUNK_BYTES / 4 ? len + 1 : CHUNK_BYTES;
    chunk_t *fresh;
    if (cap == CHUNK_BYTES && fifo->spare != NULL) {
      fresh = fifo->spare;
      fifo->spare = NULL;
    } else {
      fresh = malloc(sizeof *fresh + cap);
      if (fresh == NULL) return NULL;
    }
    fresh->next = NULL;
    fresh->used = 0;
    fresh->cap = cap;
    if (c != NULL) {
      c->next = fresh;
    } else {
      fifo->oldest = fresh;
    }
    fifo->newest = c = fresh;
  }
  char *copy = c->data + c->used;
  if (len > 0) memcpy(copy, bytes, len);
  copy[len] = '\0';
  c->used += len + 1;
  c->last_tag = tag;
  return copy;
}

void text_fifo_release_through(text_fifo_t *fifo, uint64_t tag) {
  while (fifo->oldest != NULL && fifo->oldest->last_tag <= tag) {
    chunk_t *c = fifo->oldest;
    fifo->oldest = c->next;
    if (fifo->newest == c) fifo->newest = NULL;
    /* Freed and allocated again at once, a chunk at the top of the heap is given back
     * to the kernel and faulted in anew each time. */
    if (c->cap == CHUNK_BYTES && fifo->spare == NULL) {
      fifo->spare = c;
    } else {
      free(c);
    }
  }
}
