/* The connection state machine, framing and event loop of ws.h. */
#define _GNU_SOURCE
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *KEY = "d3NiZW5jaC1rZXktMDAwMQ==";   /* 16 bytes, base64; any fixed key will do */

uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

const char *failure_name(enum failure why) {
    static const char *names[] = {"connect", "handshake", "auth", "protocol", "closed"};
    return names[why];
}

int loop_init(loop_t *loop, const char *host, int port, const char *path) {
    memset(loop, 0, sizeof *loop);
    loop->epoll = epoll_create1(0);
    loop->address.sin_family = AF_INET;
    loop->address.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &loop->address.sin_addr) != 1) return -1;
    loop->request_len = (size_t)snprintf(loop->request, sizeof loop->request,
        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host, port, KEY);
    /* accept = base64(SHA-1(key + the RFC's GUID)) */
    char joined[96];
    unsigned char digest[SHA_DIGEST_LENGTH];
    snprintf(joined, sizeof joined, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", KEY);
    SHA1((const unsigned char *)joined, strlen(joined), digest);
    EVP_EncodeBlock((unsigned char *)loop->accept, digest, SHA_DIGEST_LENGTH);
    loop->mask_state = (uint32_t)now_ns() | 1u;
    return 0;
}

static void watch(loop_t *loop, conn_t *conn, int op, int writing) {
    struct epoll_event event = {.events = EPOLLIN | EPOLLRDHUP | (writing ? EPOLLOUT : 0), .data.ptr = conn};
    epoll_ctl(loop->epoll, op, conn->fd, &event);
    conn->writing = writing;
}

static void queue_output(loop_t *loop, conn_t *conn) {
    if (conn->queued || conn->writing) return;
    if (loop->flush_len == loop->flush_cap) {
        loop->flush_cap = loop->flush_cap ? loop->flush_cap * 2 : 1024;
        loop->flush = realloc(loop->flush, (size_t)loop->flush_cap * sizeof *loop->flush);
    }
    loop->flush[loop->flush_len++] = conn;
    conn->queued = 1;
}

int conn_open(loop_t *loop, conn_t *conn) {
    conn->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    conn->started_ns = now_ns();
    conn->state = CONNECTING;
    if (conn->fd < 0) {
        loop->failures[FAIL_CONNECT]++;
        conn->state = CLOSED;
        if (loop->verbose) perror("socket");
        return -1;
    }
    int one = 1;
    setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(conn->fd, (struct sockaddr *)&loop->address, sizeof loop->address) < 0 && errno != EINPROGRESS) {
        conn_close(loop, conn);
        loop->failures[FAIL_CONNECT]++;
        return -1;
    }
    append(&conn->out, loop->request, loop->request_len);
    watch(loop, conn, EPOLL_CTL_ADD, 1);
    return 0;
}

void conn_close(loop_t *loop, conn_t *conn) {
    (void)loop;
    if (conn->fd >= 0) close(conn->fd);   /* closing removes it from the epoll set */
    conn->fd = -1;
    conn->state = CLOSED;
    release(&conn->in);
    release(&conn->out);
    release(&conn->message);
}

void conn_fail(loop_t *loop, conn_t *conn, enum failure why) {
    if (conn->state == CLOSED) return;
    if (loop->verbose) fprintf(stderr, "wsbench: connection %d failed: %s (close code %d)\n",
                               conn->index, failure_name(why), conn->close_code);
    loop->failures[why]++;
    conn_close(loop, conn);
    if (loop->on_failed) loop->on_failed(loop, conn, why);
}

static void send_frame(loop_t *loop, conn_t *conn, int opcode, const char *payload, size_t len) {
    unsigned char header[14];
    size_t n = 0;
    header[n++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        header[n++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        header[n++] = 0x80 | 126;
        header[n++] = (unsigned char)(len >> 8);
        header[n++] = (unsigned char)len;
    } else {
        header[n++] = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8) header[n++] = (unsigned char)((uint64_t)len >> shift);
    }
    uint32_t x = loop->mask_state;                 /* xorshift32: a fresh masking key per frame */
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    loop->mask_state = x;
    unsigned char mask[4];
    memcpy(mask, &x, 4);
    memcpy(header + n, mask, 4);
    n += 4;
    append(&conn->out, header, n);
    size_t start = conn->out.len;
    append(&conn->out, payload, len);
    unsigned char *p = (unsigned char *)conn->out.data + start;
    for (size_t i = 0; i < len; i++) p[i] ^= mask[i & 3];
    queue_output(loop, conn);
}

void conn_send_text(loop_t *loop, conn_t *conn, const char *text, size_t len) {
    if (conn->state == CLOSED) return;
    send_frame(loop, conn, 1, text, len);
}

static void send_authenticate(loop_t *loop, conn_t *conn) {
    char text[160];
    int len = snprintf(text, sizeof text,
                       "{\"event\":\"authenticate\",\"data\":{\"type\":\"Bearer\",\"token\":\"user:%s\"}}", conn->user);
    conn_send_text(loop, conn, text, (size_t)len);
}

/* A complete text message: `connected` while authenticating, the scenario's afterwards. */
static void deliver(loop_t *loop, conn_t *conn, const char *text, size_t len) {
    if (conn->state == READY) {
        loop->on_message(loop, conn, text, len);
        return;
    }
    char event[32], user[64], id[64], time[64];
    if (!json_string(text, len, "event", event, sizeof event) || strcmp(event, "connected") != 0
        || !json_string(text, len, "id", id, sizeof id) || !json_string(text, len, "time", time, sizeof time)
        || !json_string(text, len, "userId", user, sizeof user) || strcmp(user, conn->user) != 0) {
        if (loop->verbose) fprintf(stderr, "wsbench: connection %d: expected connected for %s, got %.*s\n",
                                   conn->index, conn->user, (int)(len > 200 ? 200 : len), text);
        conn_fail(loop, conn, FAIL_AUTH);
        return;
    }
    conn->state = READY;
    conn->ready_ns = now_ns();
    loop->on_ready(loop, conn);
}

/* Parses the frames in p[0..n); returns how many bytes it consumed (whole frames only). */
static size_t read_frames(loop_t *loop, conn_t *conn, const unsigned char *p, size_t n) {
    size_t used = 0;
    while (conn->state != CLOSED && n - used >= 2) {
        const unsigned char *f = p + used;
        size_t avail = n - used, header = 2;
        int fin = f[0] & 0x80, opcode = f[0] & 0x0f;
        uint64_t len = f[1] & 0x7f;
        if ((f[0] & 0x70) || (f[1] & 0x80)) { conn_fail(loop, conn, FAIL_PROTOCOL); break; }  /* RSV bits, masked */
        if (len == 126) {
            if (avail < 4) break;
            len = ((uint64_t)f[2] << 8) | f[3];
            header = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 2; i < 10; i++) len = (len << 8) | f[i];
            header = 10;
        }
        if (avail - header < len) break;
        const char *payload = (const char *)f + header;
        used += header + len;
        if (opcode >= 8) {                         /* control frames: never fragmented, <= 125 bytes */
            if (!fin || len > 125) { conn_fail(loop, conn, FAIL_PROTOCOL); break; }
            if (opcode == 9) {
                send_frame(loop, conn, 10, payload, len);
            } else if (opcode == 8) {
                conn->close_code = len >= 2 ? ((unsigned char)payload[0] << 8 | (unsigned char)payload[1]) : 1005;
                conn_fail(loop, conn, FAIL_CLOSED);
            } else if (opcode != 10) {
                conn_fail(loop, conn, FAIL_PROTOCOL);
            }
            continue;
        }
        if (opcode == 0) {                         /* continuation */
            if (!conn->fragmented) { conn_fail(loop, conn, FAIL_PROTOCOL); break; }
            append(&conn->message, payload, len);
        } else if (opcode == 1 || opcode == 2) {
            if (conn->fragmented) { conn_fail(loop, conn, FAIL_PROTOCOL); break; }
            if (fin) { deliver(loop, conn, payload, len); continue; }
            append(&conn->message, payload, len);
            conn->fragmented = 1;
        } else {
            conn_fail(loop, conn, FAIL_PROTOCOL);
            break;
        }
        if (fin) {
            conn->fragmented = 0;
            deliver(loop, conn, conn->message.data, conn->message.len);
            conn->message.len = 0;
        }
    }
    return used;
}

/* The value of header `name` (lower case) in an HTTP head, trimmed; 0 when absent. */
static int header_value(const char *head, size_t len, const char *name, char *out, size_t out_size) {
    size_t name_len = strlen(name);
    for (const char *line = head; line < head + len;) {
        const char *eol = memmem(line, (size_t)(head + len - line), "\r\n", 2);
        if (!eol) break;
        if ((size_t)(eol - line) > name_len && line[name_len] == ':' && strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;
            while (v < eol && *v == ' ') v++;
            size_t n = (size_t)(eol - v);
            while (n && v[n - 1] == ' ') n--;
            if (n >= out_size) return 0;
            memcpy(out, v, n);
            out[n] = 0;
            return 1;
        }
        line = eol + 2;
    }
    return 0;
}

/* The 101 answer: status line and accept key; bytes after it are frames already. */
static size_t read_upgrade(loop_t *loop, conn_t *conn, const char *p, size_t n) {
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - p) + 4;
    char accept[64];
    if (n < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0
        || !header_value(p, head, "sec-websocket-accept", accept, sizeof accept) || strcmp(accept, loop->accept) != 0) {
        conn_fail(loop, conn, FAIL_HANDSHAKE);
        return n;
    }
    if (loop->no_auth) {
        conn->state = READY;
        conn->ready_ns = now_ns();
        loop->on_ready(loop, conn);
        return head;
    }
    conn->state = AUTHENTICATING;
    send_authenticate(loop, conn);
    return head;
}

static void on_readable(loop_t *loop, conn_t *conn) {
    static unsigned char chunk[1 << 20];
    ssize_t got = recv(conn->fd, chunk, sizeof chunk, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_fail(loop, conn, conn->state == UPGRADING ? FAIL_HANDSHAKE : FAIL_CLOSED);
        return;
    }
    if (got < 0) return;
    /* Parse straight from the chunk unless a partial frame is waiting. */
    const unsigned char *p = chunk;
    size_t n = (size_t)got;
    if (conn->in.len) {
        append(&conn->in, chunk, n);
        p = (const unsigned char *)conn->in.data;
        n = conn->in.len;
    }
    size_t used = 0;
    if (conn->state == UPGRADING) used = read_upgrade(loop, conn, (const char *)p, n);
    if (conn->state == AUTHENTICATING || conn->state == READY) used += read_frames(loop, conn, p + used, n - used);
    if (conn->state == CLOSED) return;
    if (p == chunk) {
        if (used < n) append(&conn->in, p + used, n - used);
    } else {
        memmove(conn->in.data, conn->in.data + used, n - used);
        conn->in.len = n - used;
    }
}

static void flush(loop_t *loop, conn_t *conn) {
    size_t sent = 0;
    while (sent < conn->out.len) {
        ssize_t n = send(conn->fd, conn->out.data + sent, conn->out.len - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            conn_fail(loop, conn, conn->state == CONNECTING ? FAIL_CONNECT : FAIL_CLOSED);
            return;
        }
        sent += (size_t)n;
    }
    memmove(conn->out.data, conn->out.data + sent, conn->out.len - sent);
    conn->out.len -= sent;
    int pending = conn->out.len > 0;
    if (pending != conn->writing) watch(loop, conn, EPOLL_CTL_MOD, pending);
}

void loop_turn(loop_t *loop, int timeout_ms) {
    struct epoll_event events[512];
    /* Writes queued since the last turn go out at its end: never sleep in front of them (a paced
       publisher would otherwise send each message only when the next one is due). */
    int n = epoll_wait(loop->epoll, events, 512, loop->flush_len ? 0 : timeout_ms);
    for (int i = 0; i < n; i++) {
        conn_t *conn = events[i].data.ptr;
        if (conn->state == CLOSED) continue;
        if (conn->state == CONNECTING) {
            int error = 0;
            socklen_t size = sizeof error;
            getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &error, &size);
            if (error || (events[i].events & (EPOLLERR | EPOLLHUP))) { conn_fail(loop, conn, FAIL_CONNECT); continue; }
            conn->state = UPGRADING;
        }
        if (events[i].events & EPOLLOUT) flush(loop, conn);
        if (conn->state != CLOSED && (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            on_readable(loop, conn);
    }
    for (int i = 0; i < loop->flush_len; i++) {
        conn_t *conn = loop->flush[i];
        conn->queued = 0;
        if (conn->state != CLOSED && conn->state != CONNECTING && !conn->writing) flush(loop, conn);
    }
    loop->flush_len = 0;
}

/* Where the value of "key" starts (after the colon and any spaces), or NULL. */
static const char *json_value(const char *text, size_t len, const char *key) {
    char quoted[40];
    int n = snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *end = text + len;
    for (const char *p = text; p < end;) {
        const char *hit = memmem(p, (size_t)(end - p), quoted, (size_t)n);
        if (!hit) return NULL;
        const char *v = hit + n;
        while (v < end && *v == ' ') v++;
        if (v < end && *v == ':') {
            v++;
            while (v < end && *v == ' ') v++;
            return v < end ? v : NULL;
        }
        p = hit + 1;
    }
    return NULL;
}

int json_string(const char *text, size_t len, const char *key, char *out, size_t out_size) {
    const char *v = json_value(text, len, key), *end = text + len;
    if (!v || *v != '"') return 0;
    const char *close = memchr(v + 1, '"', (size_t)(end - v - 1));
    if (!close || (size_t)(close - v - 1) >= out_size) return 0;
    memcpy(out, v + 1, (size_t)(close - v - 1));
    out[close - v - 1] = 0;
    return 1;
}

int json_integer(const char *text, size_t len, const char *key, int64_t *out) {
    const char *v = json_value(text, len, key), *end = text + len;
    if (!v) return 0;
    int negative = v < end && *v == '-';
    if (negative) v++;
    if (v >= end || *v < '0' || *v > '9') return 0;
    int64_t value = 0;
    while (v < end && *v >= '0' && *v <= '9') value = value * 10 + (*v++ - '0');
    *out = negative ? -value : value;
    return 1;
}
