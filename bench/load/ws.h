/* The client side of RFC 6455 and of the gateway's JSON protocol, on one epoll loop.
 *
 * A connection goes CONNECTING -> UPGRADING -> AUTHENTICATING -> READY; the loop sends the
 * upgrade request, checks the 101 answer and its accept key, sends `authenticate` with the
 * connection's token and checks the `connected` answer. From READY on, every text message
 * goes to the scenario's callback. Writes are queued per connection and flushed once per loop
 * turn, so a burst of requests to one server costs one send().
 */
#ifndef WSBENCH_WS_H
#define WSBENCH_WS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"

enum state { CONNECTING, UPGRADING, AUTHENTICATING, READY, CLOSED };

/* Why a connection failed; counted per kind in loop_t.failures. */
enum failure { FAIL_CONNECT, FAIL_HANDSHAKE, FAIL_AUTH, FAIL_PROTOCOL, FAIL_CLOSED, FAIL_KINDS };

typedef struct conn {
    int fd;
    int index;
    enum state state;
    char user[32];          /* authenticate as user:<user>; `connected` must carry this userId */
    buffer_t in;            /* bytes of an incomplete frame, kept between reads */
    buffer_t out;           /* bytes not yet sent */
    buffer_t message;       /* fragments of a message in progress */
    int fragmented;         /* a fragmented message is in progress */
    int writing;            /* EPOLLOUT armed */
    int queued;             /* on the loop's flush list */
    uint64_t started_ns, ready_ns;
    int close_code;
    /* scenario state */
    uint64_t expected;      /* fanout: next sequence number; echo: next reply id */
    uint64_t next_id;       /* echo: next request id */
    uint64_t due_ns;        /* idle: next heartbeat */
} conn_t;

typedef struct loop loop_t;

struct loop {
    int epoll;
    struct sockaddr_in address;
    char request[512];      /* the upgrade request, the same for every connection */
    size_t request_len;
    char accept[32];        /* the Sec-WebSocket-Accept value it must get back */
    uint32_t mask_state;    /* xorshift for masking keys */
    conn_t **flush;         /* connections with queued output this turn */
    int flush_len, flush_cap;
    uint64_t failures[FAIL_KINDS];
    int verbose;
    int no_auth;            /* a raw echo server: ready once upgraded, no authenticate */
    void *scenario;
    void (*on_ready)(loop_t *, conn_t *);
    void (*on_message)(loop_t *, conn_t *, const char *text, size_t len);
    void (*on_failed)(loop_t *, conn_t *, enum failure why);
};

uint64_t now_ns(void);
int loop_init(loop_t *loop, const char *host, int port, const char *path);
/* Starts connecting; returns 0, or -1 (counted as a connect failure) when no socket could be had. */
int conn_open(loop_t *loop, conn_t *conn);
/* Queues one masked text frame; it is sent at the end of the loop turn. */
void conn_send_text(loop_t *loop, conn_t *conn, const char *text, size_t len);
void conn_close(loop_t *loop, conn_t *conn);
/* Counts the failure, closes the connection and tells the scenario. */
void conn_fail(loop_t *loop, conn_t *conn, enum failure why);
/* One turn: waits up to timeout_ms for events, handles them, flushes queued output. */
void loop_turn(loop_t *loop, int timeout_ms);
const char *failure_name(enum failure why);

/* JSON, just enough for the gateway's envelopes: finds a key anywhere in the text. */
int json_string(const char *text, size_t len, const char *key, char *out, size_t out_size);
int json_integer(const char *text, size_t len, const char *key, int64_t *out);

#endif
