/* text_fifo: NUL-terminated copies of byte strings, packed into large chunks and
 * released oldest first. The ledger and the stream history keep a copy of every line
 * and row the mock writes and drop them in the order they came; one malloc and one
 * free per line were most of what recording cost, so copies share 64 KiB chunks and a
 * chunk is freed once every copy in it has been released.
 *
 * Each copy carries a tag, a number the caller increases with every push (the
 * ledger's sequence number, a stream's row serial); releasing "through tag t" frees
 * the chunks whose copies all have tags <= t. Copies never move: a pointer returned by
 * text_fifo_push stays valid until its tag is released or the fifo destroyed.
 * Single-threaded. */
#ifndef TEXT_FIFO_H
#define TEXT_FIFO_H

#include <stddef.h>
#include <stdint.h>

typedef struct text_fifo text_fifo_t;

/* Returns NULL when out of memory. */
text_fifo_t *text_fifo_create(void);
/* Frees every copy. NULL is accepted. */
void text_fifo_destroy(text_fifo_t *fifo);

/* Copies bytes[0..len) and a NUL; tag must not be smaller than the previous push's.
 * Returns the copy, or NULL when out of memory. */
char *text_fifo_push(text_fifo_t *fifo, const char *bytes, size_t len, uint64_t tag);

/* Releases the copies tagged <= tag (their chunks are freed once wholly released). */
void text_fifo_release_through(text_fifo_t *fifo, uint64_t tag);

#endif
