/* A growable byte buffer: the load client (ws.c) and the floor server (bench/floor) both keep
 * each connection's unread input, unsent output and message fragments in one, and share this
 * one definition so the yardstick and the client grow their buffers alike.
 *
 * Running out of memory ends the program with BUFFER_EXIT_STATUS: each program's usual failure
 * status (wsbench's 2 unless the includer defines another first).
 */
#ifndef WSBENCH_BUFFER_H
#define WSBENCH_BUFFER_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BUFFER_EXIT_STATUS
#define BUFFER_EXIT_STATUS 2
#endif

typedef struct {
    char *data;
    size_t len, cap;
} buffer_t;

/* Appends len bytes, doubling the capacity (from 256) until they fit. */
static inline void append(buffer_t *b, const void *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len) cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data) { perror("realloc"); exit(BUFFER_EXIT_STATUS); }
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

/* Frees the bytes and leaves an empty buffer, ready to be appended to again. */
static inline void release(buffer_t *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

#endif
