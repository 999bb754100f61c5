/* floor: the least work a server can do for the bench scenarios, as a yardstick.
 *
 * One thread, one epoll loop. It speaks enough of RFC 6455 (upgrade with the accept key,
 * masked client frames of any length, fragments, ping/pong, the close handshake) and of the
 * gateway protocol (`authenticate` with `user:<id>` or `anon` -> `connected`; `heartbeat`;
 * `echo` back to the sender; `broadcast` to every authenticated client; the `Not
 * authenticated`, `Authentication failed` and `Invalid message format` errors) for wsbench's
 * scenarios, and prints the LISTENING / CONNECTED / DISCONNECTED lines of docs/contract.md so
 * it pays the same logging cost as the fixture.
 *
 * The work it saves, and a real server cannot: it does not parse JSON (it finds `event`,
 * `token` and `data` by scanning and copies `data` as it came), keeps no rooms or users,
 * has no timers, no Redis, no encryption, no compression. A broadcast is framed once and
 * copied to each recipient's output; each connection's output goes out in one send() per loop
 * turn. Numbers for a real server read best as a fraction of this one's, from the same run.
 *
 * usage: floor [--host H] [--port N]      (port 0: any free port, printed on LISTENING)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFFER_EXIT_STATUS 1
#include "../load/buffer.h"

enum { LIMIT = 1 << 20 };   /* unsent bytes past which broadcasts and echoes to a client are dropped */

typedef struct client {
    int fd, upgraded, authenticated, writing, queued;
    unsigned long id;
    char user[64];
    buffer_t in, out, message;
    int fragmented;
    struct client *next, *prev;   /* the authenticated clients, for broadcast */
} client_t;

static int epoll_fd;
static client_t *members;
static client_t **flush_list;
static size_t flush_len, flush_cap;
static unsigned long next_id = 1;
static volatile sig_atomic_t stopping;

static void watch(client_t *c, int op, int writing) {
    struct epoll_event event = {.events = EPOLLIN | (writing ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epoll_fd, op, c->fd, &event);
    c->writing = writing;
}

static void queue(client_t *c) {
    if (c->queued || c->writing) return;
    if (flush_len == flush_cap) {
        flush_cap = flush_cap ? flush_cap * 2 : 1024;
        flush_list = realloc(flush_list, flush_cap * sizeof *flush_list);
    }
    flush_list[flush_len++] = c;
    c->queued = 1;
}

/* A server frame (FIN, unmasked) into a buffer. */
static void frame(buffer_t *b, int opcode, const char *payload, size_t len) {
    unsigned char header[10];
    size_t n = 0;
    header[n++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        header[n++] = (unsigned char)len;
    } else if (len < 65536) {
        header[n++] = 126;
        header[n++] = (unsigned char)(len >> 8);
        header[n++] = (unsigned char)len;
    } else {
        header[n++] = 127;
        for (int shift = 56; shift >= 0; shift -= 8) header[n++] = (unsigned char)((uint64_t)len >> shift);
    }
    append(b, header, n);
    append(b, payload, len);
}

static void send_text(client_t *c, const char *text, size_t len) {
    frame(&c->out, 1, text, len);
    queue(c);
}

static void drop(client_t *c) {
    if (c->authenticated) {
        printf("DISCONNECTED c%lu %s\n", c->id, c->user[0] ? c->user : "-");
        if (c->prev) c->prev->next = c->next; else members = c->next;
        if (c->next) c->next->prev = c->prev;
    }
    close(c->fd);
    c->fd = -1;
    release(&c->in);
    release(&c->out);
    release(&c->message);
    /* Freed when the flush list is walked, after every event of this turn is handled. */
    if (!c->queued) {
        c->writing = 0;
        queue(c);
    }
}

static void close_with(client_t *c, unsigned code) {
    char payload[2] = {(char)(code >> 8), (char)code};
    frame(&c->out, 8, payload, 2);
    send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
    drop(c);
}

static void error_event(client_t *c, const char *message) {
    char text[128];
    int n = snprintf(text, sizeof text, "{\"event\":\"error\",\"data\":{\"message\":\"%s\"}}", message);
    send_text(c, text, (size_t)n);
}

/* The end of the JSON value starting at p (string-aware bracket matching), or NULL. */
static const char *value_end(const char *p, const char *end) {
    int depth = 0;
    for (const char *q = p; q < end; q++) {
        if (*q == '"') {
            for (q++; q < end && *q != '"'; q++) if (*q == '\\') q++;
            if (q >= end) return NULL;
            if (depth == 0) return q + 1;
        } else if (*q == '{' || *q == '[') {
            depth++;
        } else if (*q == '}' || *q == ']') {
            if (--depth <= 0) return depth == 0 ? q + 1 : q;
        } else if (depth == 0 && (*q == ',')) {
            return q;
        }
    }
    return depth == 0 ? end : NULL;
}

/* The value of the first "key": in the text: where it starts and its length, or NULL. */
static const char *find(const char *text, size_t len, const char *key, size_t *value_len) {
    char quoted[32];
    int n = snprintf(quoted, sizeof quoted, "\"%s\":", key);
    const char *hit = memmem(text, len, quoted, (size_t)n);
    if (!hit) return NULL;
    const char *v = hit + n, *end = text + len;
    const char *e = value_end(v, end);
    if (!e) return NULL;
    *value_len = (size_t)(e - v);
    return v;
}

static void authenticate(client_t *c, const char *text, size_t len) {
    size_t n;
    const char *token = find(text, len, "token", &n);
    char user[64] = "";
    if (token && n > 7 && n - 7 < sizeof user && memcmp(token, "\"user:", 6) == 0) {
        memcpy(user, token + 6, n - 7);
        user[n - 7] = 0;
    } else if (!(token && n == 6 && memcmp(token, "\"anon\"", 6) == 0)) {
        error_event(c, "Authentication failed");
        close_with(c, 4003);
        return;
    }
    c->authenticated = 1;
    strcpy(c->user, user);
    c->next = members;
    if (members) members->prev = c;
    members = c;
    char stamp[32], reply[256];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S.000Z", gmtime(&now));
    int r = user[0] ? snprintf(reply, sizeof reply, "{\"event\":\"connected\",\"data\":{\"id\":\"c%lu\",\"userId\":\"%s\",\"time\":\"%s\"}}", c->id, user, stamp)
                    : snprintf(reply, sizeof reply, "{\"event\":\"connected\",\"data\":{\"id\":\"c%lu\",\"time\":\"%s\"}}", c->id, stamp);
    send_text(c, reply, (size_t)r);
    printf("CONNECTED c%lu %s\n", c->id, user[0] ? user : "-");
}

/* Returns 0 when the client was dropped. */
static int on_message(client_t *c, const char *text, size_t len) {
    size_t event_len, data_len = 4;
    const char *event = find(text, len, "event", &event_len);
    const char *data = find(text, len, "data", &data_len);
    if (!event || len < 2 || text[0] != '{') { error_event(c, "Invalid message format"); return 1; }
    if (!data) data = "null", data_len = 4;
#define IS(name) (event_len == sizeof name + 1 && memcmp(event + 1, name, sizeof name - 1) == 0)
    if (IS("authenticate")) {
        if (c->authenticated) { error_event(c, "Already authenticated"); return 1; }
        authenticate(c, text, len);
        return c->fd >= 0;
    }
    if (IS("heartbeat")) return 1;
    if (!c->authenticated) { error_event(c, "Not authenticated"); return 1; }
    if (!IS("echo") && !IS("broadcast")) return 1;
    buffer_t reply = {0};
    append(&reply, "{\"event\":", 9);
    append(&reply, event, event_len);
    append(&reply, ",\"data\":", 8);
    append(&reply, data, data_len);
    append(&reply, "}", 1);
    if (IS("echo")) {
        if (c->out.len < LIMIT) send_text(c, reply.data, reply.len);
    } else {
        buffer_t framed = {0};   /* framed once, copied to each member */
        frame(&framed, 1, reply.data, reply.len);
        for (client_t *m = members; m; m = m->next)
            if (m->out.len < LIMIT) { append(&m->out, framed.data, framed.len); queue(m); }
        release(&framed);
    }
    release(&reply);
    return 1;
#undef IS
}

/* Frames in p[0..n); returns the bytes consumed, or -1 when the client was dropped. */
static long read_frames(client_t *c, unsigned char *p, size_t n) {
    size_t used = 0;
    while (n - used >= 6) {
        unsigned char *f = p + used;
        size_t header = 2, avail = n - used;
        uint64_t len = f[1] & 0x7f;
        int fin = f[0] & 0x80, opcode = f[0] & 0x0f;
        if (!(f[1] & 0x80) || (f[0] & 0x70)) { close_with(c, 1002); return -1; }
        if (len == 126) { if (avail < 8) break; len = (uint64_t)f[2] << 8 | f[3]; header = 4; }
        else if (len == 127) { if (avail < 14) break; len = 0; for (int i = 2; i < 10; i++) len = len << 8 | f[i]; header = 10; }
        if (avail < header + 4 + len) break;
        unsigned char *mask = f + header, *payload = mask + 4;
        for (uint64_t i = 0; i < len; i++) payload[i] ^= mask[i & 3];
        used += header + 4 + len;
        if (opcode == 8) { close_with(c, len >= 2 ? (unsigned)payload[0] << 8 | payload[1] : 1000); return -1; }
        if (opcode == 9) { frame(&c->out, 10, (char *)payload, len); queue(c); continue; }
        if (opcode == 10) continue;
        if (opcode == 0 && c->fragmented) append(&c->message, payload, len);
        else if ((opcode == 1 || opcode == 2) && !c->fragmented) {
            if (fin) { if (!on_message(c, (char *)payload, len)) return -1; continue; }
            append(&c->message, payload, len);
            c->fragmented = 1;
        } else { close_with(c, 1002); return -1; }
        if (fin) {
            c->fragmented = 0;
            if (!on_message(c, c->message.data, c->message.len)) return -1;
            c->message.len = 0;
        }
    }
    return (long)used;
}

static long read_upgrade(client_t *c, const char *p, size_t n) {
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) return 0;
    const char *key = memmem(p, (size_t)(end - p), "Sec-WebSocket-Key: ", 19);
    if (!key) key = memmem(p, (size_t)(end - p), "sec-websocket-key: ", 19);
    if (memcmp(p, "GET /ws ", 8) != 0 || !key) {
        const char *answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        send(c->fd, answer, strlen(answer), MSG_NOSIGNAL);
        drop(c);
        return -1;
    }
    key += 19;
    const char *key_end = memchr(key, '\r', (size_t)(end - key) + 1);
    char joined[128], accept[64], answer[256];
    unsigned char digest[SHA_DIGEST_LENGTH];
    int k = snprintf(joined, sizeof joined, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (int)(key_end - key), key);
    SHA1((unsigned char *)joined, (size_t)k, digest);
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
    int a = snprintf(answer, sizeof answer, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    append(&c->out, answer, (size_t)a);
    queue(c);
    c->upgraded = 1;
    return end + 4 - p;
}

static void on_readable(client_t *c) {
    static unsigned char chunk[1 << 19];
    ssize_t got = recv(c->fd, chunk, sizeof chunk, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) { drop(c); return; }
    if (got < 0) return;
    unsigned char *p = chunk;
    size_t n = (size_t)got;
    if (c->in.len) { append(&c->in, chunk, n); p = (unsigned char *)c->in.data; n = c->in.len; }
    long used = 0;
    if (!c->upgraded) { used = read_upgrade(c, (char *)p, n); if (used < 0) return; }
    if (c->upgraded) { long more = read_frames(c, p + used, n - (size_t)used); if (more < 0) return; used += more; }
    if (p == chunk) { if ((size_t)used < n) append(&c->in, p + used, n - (size_t)used); }
    else { memmove(c->in.data, c->in.data + used, n - (size_t)used); c->in.len = n - (size_t)used; }
}

static void flush(client_t *c) {
    size_t sent = 0;
    while (sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + sent, c->out.len - sent, MSG_NOSIGNAL);
        if (n < 0) { if (errno == EINTR) continue; if (errno == EAGAIN) break; drop(c); return; }
        sent += (size_t)n;
    }
    memmove(c->out.data, c->out.data + sent, c->out.len - sent);
    c->out.len -= sent;
    if ((c->out.len > 0) != c->writing) watch(c, EPOLL_CTL_MOD, c->out.len > 0);
}

static void on_signal(int signal) { (void)signal; stopping = 1; }

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--host") == 0) host = argv[i + 1];
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);   /* lines go out once per loop turn */
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &address.sin_addr);
    socklen_t size = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 4096) < 0) {
        perror("floor: listen");
        return 1;
    }
    getsockname(listener, (struct sockaddr *)&address, &size);
    epoll_fd = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event);
    printf("LISTENING %d\n", ntohs(address.sin_port));
    fflush(stdout);
    struct epoll_event events[512];
    while (!stopping) {
        int n = epoll_wait(epoll_fd, events, 512, 1000);
        for (int i = 0; i < n; i++) {
            client_t *c = events[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    client_t *fresh = calloc(1, sizeof *fresh);
                    fresh->fd = fd;
                    fresh->id = next_id++;
                    watch(fresh, EPOLL_CTL_ADD, 0);
                }
                continue;
            }
            if (c->fd < 0) continue;
            if (events[i].events & EPOLLOUT) flush(c);
            if (c->fd >= 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(c);
        }
        for (size_t i = 0; i < flush_len; i++) {
            client_t *c = flush_list[i];
            c->queued = 0;
            if (c->fd < 0) free(c);
            else if (!c->writing) flush(c);
        }
        flush_len = 0;
        fflush(stdout);
    }
    while (members) close_with(members, 1001);
    fflush(stdout);
    return 0;
}
