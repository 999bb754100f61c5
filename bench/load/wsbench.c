/* wsbench: load for a server that speaks the gateway protocol (docs/contract.md: the fixture,
 * and the reference servers of bench/), one scenario per run, on one core.
 *
 *   connect  C connections (at most --window opening at once) upgrade, authenticate and wait
 *            for `connected`: connections/s and time to connected.
 *   fanout   C subscribers and one publisher sending `broadcast` with {"s":seq,"t":ns,"p":pad};
 *            at most --window messages not yet seen by every subscriber, or open loop at
 *            --rate messages/s: deliveries/s, publish-to-receive latency, and per subscriber
 *            every sequence number once and in order (a gap is lost, a step back is disorder).
 *   echo     C clients each keep --depth `echo` requests in flight, with the same data as a
 *            fanout message; replies must come back in order: round trips/s and latency,
 *            measured after --warmup for --duration.
 *   idle     C authenticated connections hold still (a heartbeat every --heartbeat s each):
 *            server memory per connection from VmRSS, and how many stayed open. A `broadcast`
 *            that arrives (published elsewhere, e.g. on another instance over Redis) is counted
 *            as received, not as unexpected: scripts/bench-redis checks cross-instance delivery.
 *
 * With --server-pid the server's and wsbench's CPU over the measured phase is reported
 * (100 = one core). Output: one line for people, then one JSON line. Exit 0 when clean,
 * 1 on failures, losses or disorder, 2 on bad usage.
 */
#define _GNU_SOURCE
#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct {
    const char *scenario, *host, *path, *label;
    int port, clients, window, depth, payload, verbose, no_auth;
    long messages;
    double duration, warmup, settle, heartbeat, rate, timeout, drain;
    int server_pid;
} options_t;

typedef struct {
    uint32_t *us;           /* latencies in microseconds */
    size_t len, cap;
} samples_t;

typedef struct {
    options_t *o;
    conn_t *conns;
    int total, opened, ready, failed, failed_after_ready;
    samples_t latency;
    /* fanout */
    conn_t *publisher;
    int publishing;
    uint64_t published, completed, deliveries, lost, disorder, unexpected;
    int *remaining;         /* per sequence number modulo RING: subscribers still to receive it */
    uint64_t first_publish_ns, last_delivery_ns;
    char *pad;
    /* echo */
    int sending;
    uint64_t measure_from, measure_to, round_trips;
} run_t;

enum { RING = 1 << 16 };

static void sample(samples_t *s, uint64_t ns) {
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1 << 16;
        s->us = realloc(s->us, s->cap * sizeof *s->us);
        if (!s->us) { perror("realloc"); exit(2); }
    }
    s->us[s->len++] = (uint32_t)(ns / 1000);
}

static int by_value(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(samples_t *s, double p) {
    if (!s->len) return 0;
    size_t i = (size_t)(p * (double)(s->len - 1) + 0.5);
    return s->us[i] / 1000.0;
}

/* utime + stime of a process, in clock ticks; 0 when it cannot be read. */
static uint64_t cpu_ticks(int pid) {
    char path[64], text[1024];
    snprintf(path, sizeof path, pid ? "/proc/%d/stat" : "/proc/self/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *p = strrchr(text, ')');   /* the command name may hold spaces */
    unsigned long utime = 0, stime = 0;
    if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    return utime + stime;
}

static long rss_kb(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}

typedef struct {
    uint64_t at, server, own;
} cpu_mark_t;

static cpu_mark_t cpu_mark(const options_t *o) {
    return (cpu_mark_t){now_ns(), o->server_pid ? cpu_ticks(o->server_pid) : 0, cpu_ticks(0)};
}

static void cpu_since(const options_t *o, cpu_mark_t start, double *server, double *own) {
    cpu_mark_t end = cpu_mark(o);
    double seconds = (double)(end.at - start.at) / 1e9, tick = (double)sysconf(_SC_CLK_TCK);
    *server = o->server_pid && seconds > 0 ? (double)(end.server - start.server) / tick / seconds * 100 : -1;
    *own = seconds > 0 ? (double)(end.own - start.own) / tick / seconds * 100 : -1;
}

/* ---------------------------------------------------------------- callbacks -------------- */

static void publish(loop_t *loop, run_t *r) {
    char text[8192];
    uint64_t seq = r->published++;
    uint64_t now = now_ns();
    if (!r->first_publish_ns) r->first_publish_ns = now;
    r->remaining[seq % RING] = r->total - 1;
    int len = snprintf(text, sizeof text, "{\"event\":\"broadcast\",\"data\":{\"s\":%llu,\"t\":%llu,\"p\":\"%s\"}}",
                       (unsigned long long)seq, (unsigned long long)now, r->pad);
    conn_send_text(loop, r->publisher, text, (size_t)len);
}

static void send_echo(loop_t *loop, run_t *r, conn_t *c) {
    char text[8192];
    int len = snprintf(text, sizeof text, "{\"event\":\"echo\",\"data\":{\"s\":%llu,\"t\":%llu,\"p\":\"%s\"}}",
                       (unsigned long long)c->next_id++, (unsigned long long)now_ns(), r->pad);
    conn_send_text(loop, c, text, (size_t)len);
}

static void on_ready(loop_t *loop, conn_t *c) {
    run_t *r = loop->scenario;
    r->ready++;
    if (strcmp(r->o->scenario, "connect") == 0) sample(&r->latency, c->ready_ns - c->started_ns);
}

static void on_failed(loop_t *loop, conn_t *c, enum failure why) {
    run_t *r = loop->scenario;
    (void)why;
    r->failed++;
    if (c->ready_ns) r->failed_after_ready++;
}

static void fanout_message(loop_t *loop, run_t *r, conn_t *c, const char *text, size_t len) {
    int64_t seq, sent;
    if (c == r->publisher) return;   /* the publisher gets its own broadcast too */
    char event[16];
    if (json_string(text, len, "event", event, sizeof event) && strcmp(event, "joined") == 0)
        return;   /* a room with history tells each subscriber its position once (--broadcast-room) */
    if (!json_integer(text, len, "s", &seq) || !json_integer(text, len, "t", &sent) || seq < 0) {
        r->unexpected++;
        return;
    }
    uint64_t now = now_ns();
    r->deliveries++;
    r->last_delivery_ns = now;
    sample(&r->latency, now - (uint64_t)sent);
    if ((uint64_t)seq < c->expected) {
        r->disorder++;
        return;
    }
    r->lost += (uint64_t)seq - c->expected;
    c->expected = (uint64_t)seq + 1;
    if (--r->remaining[seq % RING] == 0) {
        r->completed++;
        while (r->publishing && r->o->rate == 0 && r->published - r->completed < (uint64_t)r->o->window
               && (r->o->messages == 0 || r->published < (uint64_t)r->o->messages))
            publish(loop, r);
    }
}

static void echo_message(loop_t *loop, run_t *r, conn_t *c, const char *text, size_t len) {
    int64_t id, sent;
    char event[16];
    if (!json_string(text, len, "event", event, sizeof event) || strcmp(event, "echo") != 0
        || !json_integer(text, len, "s", &id) || !json_integer(text, len, "t", &sent)) {
        r->unexpected++;
        return;
    }
    uint64_t now = now_ns();
    if ((uint64_t)id != c->expected) {
        if ((uint64_t)id < c->expected) r->disorder++;
        else r->lost += (uint64_t)id - c->expected;
    }
    c->expected = (uint64_t)id + 1;
    if ((uint64_t)sent >= r->measure_from && now <= r->measure_to) {
        r->round_trips++;
        sample(&r->latency, now - (uint64_t)sent);
    }
    if (r->sending) send_echo(loop, r, c);
}

static int is_broadcast(const char *text, size_t len) {
    char event[16];
    return json_string(text, len, "event", event, sizeof event) && strcmp(event, "broadcast") == 0;
}

static void on_message(loop_t *loop, conn_t *c, const char *text, size_t len) {
    run_t *r = loop->scenario;
    const char *s = r->o->scenario;
    if (strcmp(s, "fanout") == 0) fanout_message(loop, r, c, text, len);
    else if (strcmp(s, "echo") == 0) echo_message(loop, r, c, text, len);
    else if (strcmp(s, "idle") == 0 && is_broadcast(text, len)) r->deliveries++;
    else r->unexpected++;   /* connect and idle clients expect nothing else once connected */
}

/* ---------------------------------------------------------------- phases ----------------- */

/* Opens every connection, at most `window` in progress at once, until each is ready or failed. */
static void open_all(loop_t *loop, run_t *r, int window) {
    uint64_t timeout = (uint64_t)(r->o->timeout * 1e9);
    while (r->ready + r->failed < r->total) {
        while (r->opened < r->total && r->opened - r->ready - r->failed < window) conn_open(loop, &r->conns[r->opened++]);
        loop_turn(loop, 10);
        uint64_t now = now_ns();
        for (int i = 0; i < r->opened; i++) {
            conn_t *c = &r->conns[i];
            if (c->state != READY && c->state != CLOSED && now - c->started_ns > timeout)
                conn_fail(loop, c, c->state == CONNECTING ? FAIL_CONNECT : c->state == UPGRADING ? FAIL_HANDSHAKE : FAIL_AUTH);
        }
    }
}

static void run_for(loop_t *loop, double seconds) {
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
    while (now_ns() < end) loop_turn(loop, 5);
}

static int alive(run_t *r) {
    int n = 0;
    for (int i = 0; i < r->total; i++) n += r->conns[i].state == READY;
    return n;
}

/* ---------------------------------------------------------------- output ------------------ */

static void print_failures(loop_t *loop, FILE *f, int json) {
    for (int k = 0; k < FAIL_KINDS; k++) {
        if (json) fprintf(f, "%s\"%s\":%llu", k ? "," : "", failure_name(k), (unsigned long long)loop->failures[k]);
        else if (loop->failures[k]) fprintf(f, " %s %llu", failure_name(k), (unsigned long long)loop->failures[k]);
    }
}

static int report(loop_t *loop, run_t *r, const char *unit, double rate, double server_cpu, double own_cpu,
                  const char *extra_json, const char *extra_text) {
    const options_t *o = r->o;
    samples_t *s = &r->latency;
    qsort(s->us, s->len, sizeof *s->us, by_value);
    double p50 = percentile_ms(s, 0.5), p99 = percentile_ms(s, 0.99), p999 = percentile_ms(s, 0.999);
    double max = s->len ? s->us[s->len - 1] / 1000.0 : 0;
    int clean = r->failed == 0 && r->lost == 0 && r->disorder == 0 && r->unexpected == 0;
    int held = strcmp(o->scenario, "idle") == 0;   /* a count, not a rate; no latency */
    printf("%s %s: %.0f %s%s", o->label, o->scenario, rate, unit, held ? "" : "/s");
    if (s->len) printf(", latency p50 %.2f ms p99 %.2f ms p99.9 %.2f ms max %.2f ms", p50, p99, p999, max);
    printf("; server CPU %.0f%%, wsbench CPU %.0f%%%s; lost %llu, disorder %llu, unexpected %llu, failed %d",
           server_cpu, own_cpu, extra_text,
           (unsigned long long)r->lost, (unsigned long long)r->disorder, (unsigned long long)r->unexpected, r->failed);
    print_failures(loop, stdout, 0);
    printf("%s\n", clean ? "" : " (NOT CLEAN)");
    printf("{\"label\":\"%s\",\"scenario\":\"%s\",\"clients\":%d,\"unit\":\"%s\",\"rate\":%.1f,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"samples\":%zu,"
           "\"server_cpu\":%.1f,\"load_cpu\":%.1f,\"lost\":%llu,\"disorder\":%llu,\"unexpected\":%llu,"
           "\"failed\":%d,\"failures\":{", o->label, o->scenario, o->clients, unit, rate, p50, p99, p999, max, s->len,
           server_cpu, own_cpu, (unsigned long long)r->lost, (unsigned long long)r->disorder,
           (unsigned long long)r->unexpected, r->failed);
    print_failures(loop, stdout, 1);
    printf("}%s,\"clean\":%s}\n", extra_json, clean ? "true" : "false");
    fflush(stdout);
    return clean ? 0 : 1;
}

/* ---------------------------------------------------------------- scenarios --------------- */

static int scenario_connect(loop_t *loop, run_t *r) {
    cpu_mark_t start = cpu_mark(r->o);
    open_all(loop, r, r->o->window);
    uint64_t last = 0;
    for (int i = 0; i < r->total; i++)
        if (r->conns[i].ready_ns > last) last = r->conns[i].ready_ns;
    double server, own, seconds = last > start.at ? (double)(last - start.at) / 1e9 : 1e-9;
    cpu_since(r->o, start, &server, &own);
    return report(loop, r, "connections", r->ready / seconds, server, own, "", "");
}

static int scenario_fanout(loop_t *loop, run_t *r) {
    const options_t *o = r->o;
    r->remaining = calloc(RING, sizeof *r->remaining);
    r->publisher = &r->conns[r->total - 1];
    snprintf(r->publisher->user, sizeof r->publisher->user, "pub");
    open_all(loop, r, o->window > 64 ? o->window : 64);
    if (r->failed) return report(loop, r, "deliveries", 0, -1, -1, "", " (setup failed)");
    run_for(loop, 0.2);   /* let default-room joins settle */

    cpu_mark_t start = cpu_mark(o);
    uint64_t begin = now_ns(), stop = begin + (uint64_t)(o->duration * 1e9), interval = o->rate > 0 ? (uint64_t)(1e9 / o->rate) : 0;
    r->publishing = 1;
    if (!interval) {
        while (r->published < (uint64_t)o->window && (o->messages == 0 || r->published < (uint64_t)o->messages)) publish(loop, r);
    }
    uint64_t next = begin, last_progress = begin, seen = 0;
    for (;;) {
        uint64_t now = now_ns();
        int done_publishing = o->messages ? r->published >= (uint64_t)o->messages : now >= stop;
        if (done_publishing) r->publishing = 0;
        if (interval && r->publishing && now >= next) {
            publish(loop, r);
            next += interval;
        }
        if (!r->publishing && r->completed >= r->published) break;
        if (r->deliveries != seen) { seen = r->deliveries; last_progress = now; }
        if (now - last_progress > (uint64_t)(o->drain * 1e9)) break;   /* deliveries stopped coming */
        int wait = interval && r->publishing ? (int)((next > now ? next - now : 0) / 1000000) : 5;
        loop_turn(loop, wait);
    }
    double server, own;
    cpu_since(o, start, &server, &own);
    for (int i = 0; i < r->total - 1; i++)   /* whatever a subscriber never got is lost */
        if (r->conns[i].expected < r->published) r->lost += r->published - r->conns[i].expected;
    double seconds = r->last_delivery_ns > r->first_publish_ns ? (double)(r->last_delivery_ns - r->first_publish_ns) / 1e9 : 1e-9;
    char json[160], text[160];
    snprintf(json, sizeof json, ",\"subscribers\":%d,\"published\":%llu,\"deliveries\":%llu", r->total - 1,
             (unsigned long long)r->published, (unsigned long long)r->deliveries);
    snprintf(text, sizeof text, "; %d subscribers, %llu messages, %llu deliveries", r->total - 1,
             (unsigned long long)r->published, (unsigned long long)r->deliveries);
    return report(loop, r, "deliveries", (double)r->deliveries / seconds, server, own, json, text);
}

static int scenario_echo(loop_t *loop, run_t *r) {
    const options_t *o = r->o;
    open_all(loop, r, 64);
    if (r->failed) return report(loop, r, "round trips", 0, -1, -1, "", " (setup failed)");
    uint64_t begin = now_ns();
    r->measure_from = begin + (uint64_t)(o->warmup * 1e9);
    r->measure_to = r->measure_from + (uint64_t)(o->duration * 1e9);
    r->sending = 1;
    for (int i = 0; i < r->total; i++)
        for (int d = 0; d < o->depth; d++) send_echo(loop, r, &r->conns[i]);
    while (now_ns() < r->measure_from) loop_turn(loop, 5);
    cpu_mark_t start = cpu_mark(o);
    while (now_ns() < r->measure_to) loop_turn(loop, 5);
    double server, own;
    cpu_since(o, start, &server, &own);
    r->sending = 0;   /* let the requests in flight come back, to check none is lost */
    uint64_t drain_end = now_ns() + (uint64_t)(o->drain * 1e9);
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < r->total; i++) waiting += r->conns[i].state == READY && r->conns[i].expected < r->conns[i].next_id;
        if (!waiting || now_ns() > drain_end) break;
        loop_turn(loop, 5);
    }
    for (int i = 0; i < r->total; i++)
        if (r->conns[i].expected < r->conns[i].next_id) r->lost += r->conns[i].next_id - r->conns[i].expected;
    char text[64];
    snprintf(text, sizeof text, "; depth %d", o->depth);
    char json[64];
    snprintf(json, sizeof json, ",\"depth\":%d", o->depth);
    return report(loop, r, "round trips", (double)r->round_trips / o->duration, server, own, json, text);
}

static int scenario_idle(loop_t *loop, run_t *r) {
    const options_t *o = r->o;
    long before = o->server_pid ? rss_kb(o->server_pid) : -1;
    open_all(loop, r, 64);
    run_for(loop, o->settle);
    long settled = o->server_pid ? rss_kb(o->server_pid) : -1;
    cpu_mark_t start = cpu_mark(o);
    uint64_t now = now_ns(), period = (uint64_t)(o->heartbeat * 1e9), end = now + (uint64_t)(o->duration * 1e9);
    for (int i = 0; i < r->total; i++) r->conns[i].due_ns = now + period * (uint64_t)i / (uint64_t)r->total;
    while ((now = now_ns()) < end) {
        for (int i = 0; i < r->total; i++) {
            conn_t *c = &r->conns[i];
            if (c->state == READY && now >= c->due_ns) {
                conn_send_text(loop, c, "{\"event\":\"heartbeat\"}", 21);
                c->due_ns += period;
            }
        }
        loop_turn(loop, 10);
    }
    double server, own;
    cpu_since(o, start, &server, &own);
    long after = o->server_pid ? rss_kb(o->server_pid) : -1;
    int open = alive(r);
    double per = before >= 0 && after >= 0 && r->total ? (double)(after - before) * 1024 / r->total : -1;
    char json[256], text[200];
    snprintf(json, sizeof json, ",\"rss_before_kb\":%ld,\"rss_settled_kb\":%ld,\"rss_end_kb\":%ld,\"bytes_per_conn\":%.0f,"
             "\"connected\":%d,\"alive\":%d,\"received\":%llu", before, settled, after, per, r->ready, open,
             (unsigned long long)r->deliveries);
    snprintf(text, sizeof text, "; server RSS %ld -> %ld -> %ld kB, %.0f bytes/connection, %d of %d open, %llu broadcasts received",
             before, settled, after, per, open, r->total, (unsigned long long)r->deliveries);
    int status = report(loop, r, "connections held", open, server, own, json, text);
    return open == r->total ? status : 1;
}

/* ---------------------------------------------------------------- main -------------------- */

static void usage(void) {
    fprintf(stderr,
        "usage: wsbench connect|fanout|echo|idle --port N [options]\n"
        "  --host H (127.0.0.1) --path P (/ws) -c N clients (100) --label L --server-pid PID -v\n"
        "  --no-auth     echo: a raw echo server (no authenticate; ready once upgraded)\n"
        "  --timeout S   per connection: connect, upgrade and authenticate (10)\n"
        "  --window N    connect: connections opening at once (64); fanout: messages in flight (32)\n"
        "  -m N          fanout: messages to publish (default: publish for --duration)\n"
        "  --rate R      fanout: publish R messages/s, open loop, instead of the window\n"
        "  --payload-bytes N  fanout, echo: size of the message data (64)\n"
        "  --depth N     echo: requests in flight per client (1)\n"
        "  --duration S  fanout, echo, idle: measured time (3)\n"
        "  --warmup S    echo: time before measuring (1)\n"
        "  --drain S     how long to wait for missing replies or deliveries (2)\n"
        "  --settle S --heartbeat S   idle: wait before measuring (2); heartbeat period (2)\n");
    exit(2);
}

int main(int argc, char **argv) {
    options_t o = {.host = "127.0.0.1", .path = "/ws", .label = "server", .clients = 100, .depth = 1, .payload = 64,
                   .duration = 3, .warmup = 1, .settle = 2, .heartbeat = 2, .timeout = 10, .drain = 2, .window = -1};
    if (argc < 2) usage();
    o.scenario = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-v") == 0) { o.verbose = 1; continue; }
        if (strcmp(a, "--no-auth") == 0) { o.no_auth = 1; continue; }
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (strcmp(a, "--host") == 0) o.host = v;
        else if (strcmp(a, "--port") == 0) o.port = atoi(v);
        else if (strcmp(a, "--path") == 0) o.path = v;
        else if (strcmp(a, "--label") == 0) o.label = v;
        else if (strcmp(a, "-c") == 0) o.clients = atoi(v);
        else if (strcmp(a, "-m") == 0) o.messages = atol(v);
        else if (strcmp(a, "--window") == 0) o.window = atoi(v);
        else if (strcmp(a, "--depth") == 0) o.depth = atoi(v);
        else if (strcmp(a, "--payload-bytes") == 0) o.payload = atoi(v);
        else if (strcmp(a, "--rate") == 0) o.rate = atof(v);
        else if (strcmp(a, "--duration") == 0) o.duration = atof(v);
        else if (strcmp(a, "--warmup") == 0) o.warmup = atof(v);
        else if (strcmp(a, "--settle") == 0) o.settle = atof(v);
        else if (strcmp(a, "--heartbeat") == 0) o.heartbeat = atof(v);
        else if (strcmp(a, "--timeout") == 0) o.timeout = atof(v);
        else if (strcmp(a, "--drain") == 0) o.drain = atof(v);
        else if (strcmp(a, "--server-pid") == 0) o.server_pid = atoi(v);
        else usage();
    }
    int fanout = strcmp(o.scenario, "fanout") == 0;
    if (o.window < 0) o.window = fanout ? 32 : 64;
    if (o.port <= 0 || o.clients <= 0 || o.depth <= 0 || o.window <= 0 || o.payload > 8000 || o.heartbeat <= 0) usage();
    if (fanout && o.window >= RING) usage();

    struct rlimit limit;   /* every connection is a descriptor: take what the hard limit allows */
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    loop_t loop;
    if (loop_init(&loop, o.host, o.port, o.path) < 0) { fprintf(stderr, "wsbench: bad --host %s\n", o.host); return 2; }
    run_t r = {.o = &o, .total = o.clients + fanout};
    /* {"s":N,"t":N,"p":""} is about 40 bytes of data; the padding brings it to --payload-bytes. */
    int pad = o.payload > 40 ? o.payload - 40 : 0;
    r.pad = malloc((size_t)pad + 1);
    memset(r.pad, 'x', (size_t)pad);
    r.pad[pad] = 0;
    r.conns = calloc((size_t)r.total, sizeof *r.conns);
    for (int i = 0; i < r.total; i++) {
        r.conns[i].index = i;
        r.conns[i].fd = -1;
        snprintf(r.conns[i].user, sizeof r.conns[i].user, "u%d", i);
    }
    loop.verbose = o.verbose;
    loop.no_auth = o.no_auth;
    loop.scenario = &r;
    loop.on_ready = on_ready;
    loop.on_message = on_message;
    loop.on_failed = on_failed;
    if (strcmp(o.scenario, "connect") == 0) return scenario_connect(&loop, &r);
    if (fanout) return scenario_fanout(&loop, &r);
    if (strcmp(o.scenario, "echo") == 0) return scenario_echo(&loop, &r);
    if (strcmp(o.scenario, "idle") == 0) return scenario_idle(&loop, &r);
    usage();
}
