/* snapxfer.c — InstallSnapshot sender: windowed, acknowledged, resumable chunk streams (see snapxfer.h). */
#include "snapxfer.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapfile.h"
#include "tn_code.h"

/* ------------------------------------------------------------------------------------------------ */
/* payloads                                                                                          */

void tn_snapchunk_encode(const tn_snapchunk *c, tn_wr *w)
{
    tn_wr_u8(w, TN_SNAPXFER_MAGIC);
    tn_wr_u8(w, 'S');
    tn_wr_u8(w, TN_SNAPXFER_VERSION);
    tn_wr_varint(w, c->term);
    tn_wr_varint(w, c->index);
    tn_wr_varint(w, c->snap_term);
    tn_wr_varint(w, c->total);
    tn_wr_varint(w, c->offset);
    tn_wr_raw(w, c->data, c->len);
}

void tn_snapack_encode(const tn_snapack *a, tn_wr *w)
{
    tn_wr_u8(w, TN_SNAPXFER_MAGIC);
    tn_wr_u8(w, 'A');
    tn_wr_u8(w, TN_SNAPXFER_VERSION);
    tn_wr_varint(w, a->term);
    tn_wr_varint(w, a->index);
    tn_wr_varint(w, a->snap_term);
    tn_wr_varint(w, a->have);
}

/* Reads magic, kind and version; 0 if they are (kind, current version). */
static int read_head(tn_rd *r, uint8_t kind)
{
    uint8_t m = tn_rd_u8(r), k = tn_rd_u8(r), v = tn_rd_u8(r);
    return r->err || m != TN_SNAPXFER_MAGIC || k != kind || v != TN_SNAPXFER_VERSION ? -1 : 0;
}

int tn_snapchunk_decode(const void *p, size_t len, tn_snapchunk *c)
{
    tn_rd r;
    memset(c, 0, sizeof *c);
    tn_rd_init(&r, p, len);
    if (read_head(&r, 'S') != 0) return TN_BAD_REQUEST;
    c->term = tn_rd_varint(&r);
    c->index = tn_rd_varint(&r);
    c->snap_term = tn_rd_varint(&r);
    c->total = tn_rd_varint(&r);
    c->offset = tn_rd_varint(&r);
    if (r.err) return TN_BAD_REQUEST;
    c->len = tn_rd_left(&r);
    c->data = c->len ? (const uint8_t *)p + r.off : NULL;
    if (c->offset > c->total || c->len > c->total - c->offset) return TN_BAD_REQUEST;
    return TN_SUCCESS;
}

int tn_snapack_decode(const void *p, size_t len, tn_snapack *a)
{
    tn_rd r;
    memset(a, 0, sizeof *a);
    tn_rd_init(&r, p, len);
    if (read_head(&r, 'A') != 0) return TN_BAD_REQUEST;
    a->term = tn_rd_varint(&r);
    a->index = tn_rd_varint(&r);
    a->snap_term = tn_rd_varint(&r);
    a->have = tn_rd_varint(&r);
    return r.err || tn_rd_left(&r) ? TN_BAD_REQUEST : TN_SUCCESS;
}

/* ------------------------------------------------------------------------------------------------ */
/* sender                                                                                            */

typedef struct xfer {
    uint64_t to, term, index, snap_term, total;
    tn_snapreader *rdr;
    uint64_t acked;      /* receiver holds [0, acked) */
    uint64_t next;       /* next byte to send */
    int probing;         /* waiting for the receiver to say where it stands */
    int rewound;         /* went back to `acked` after a refused chunk; again only after an advance */
    int done;            /* delivered: kept for stall_ms so the core's late re-request sends nothing */
    int64_t done_ms;
    int64_t progress_ms; /* last advance (or probe sent) */
    int64_t request_ms;  /* last time the core asked for this transfer */
} xfer;

struct tn_snapxfer {
    tn_snapxfer_opts o;
    xfer *xs;
    size_t n, cap;
    uint8_t *buf; /* one chunk of file bytes */
    tn_wr out;    /* encoded payload, reused */
};

static void xlog(tn_snapxfer *x, const char *fmt, ...) TN_PRINTF(2, 3);
static void xlog(tn_snapxfer *x, const char *fmt, ...)
{
    if (!x->o.log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    x->o.log(x->o.arg, line);
}

tn_snapxfer *tn_snapxfer_new(const tn_snapxfer_opts *opts)
{
    if (!opts || !opts->send) return NULL;
    tn_snapxfer *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->o = *opts;
    if (!x->o.chunk) x->o.chunk = TN_SNAPXFER_CHUNK_DEFAULT;
    if (!x->o.window) x->o.window = TN_SNAPXFER_WINDOW_DEFAULT;
    if (x->o.stall_ms <= 0) x->o.stall_ms = TN_SNAPXFER_STALL_MS_DEFAULT;
    if (x->o.abandon_ms <= 0) x->o.abandon_ms = TN_SNAPXFER_ABANDON_MS_DEFAULT;
    x->buf = malloc(x->o.chunk);
    if (!x->buf) {
        free(x);
        return NULL;
    }
    tn_wr_init(&x->out);
    return x;
}

static xfer *find(const tn_snapxfer *x, uint64_t to)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->xs[i].to == to) return &x->xs[i];
    return NULL;
}

static void drop(tn_snapxfer *x, xfer *t)
{
    tn_snapreader_close(t->rdr);
    *t = x->xs[--x->n];
}

void tn_snapxfer_free(tn_snapxfer *x)
{
    if (!x) return;
    while (x->n) drop(x, &x->xs[0]);
    free(x->xs);
    free(x->buf);
    tn_wr_free(&x->out);
    free(x);
}

/* Encodes and sends the chunk [off, off + len) of t (len 0 = probe). 0 if handed over. */
static int send_chunk(tn_snapxfer *x, const xfer *t, uint64_t off, const uint8_t *data, size_t len)
{
    tn_snapchunk c = {t->term, t->index, t->snap_term, t->total, off, data, len};
    x->out.len = 0;
    tn_snapchunk_encode(&c, &x->out);
    if (x->out.oom) {
        tn_wr_free(&x->out);
        return -1;
    }
    return x->o.send(x->o.arg, t->to, x->out.p, x->out.len);
}

static void send_probe(tn_snapxfer *x, xfer *t, int64_t now_ms)
{
    t->probing = 1;
    t->next = t->acked;
    t->progress_ms = now_ms;
    send_chunk(x, t, t->acked, NULL, 0); /* lost: the next stall sends another */
}

/* Sends chunks while the window allows. Returns 0, or -1 if the transfer was dropped (read error). */
static int pump(tn_snapxfer *x, xfer *t)
{
    uint64_t window = (uint64_t)x->o.window * x->o.chunk;
    while (!t->done && !t->probing && t->next < t->total && t->next - t->acked < window) {
        uint64_t want64 = t->total - t->next;
        size_t want = want64 < x->o.chunk ? (size_t)want64 : x->o.chunk, got = 0;
        if (tn_snapreader_read(t->rdr, t->next, x->buf, want, &got) != TN_SUCCESS || got != want) {
            xlog(x, "error: snapshot %" PRIu64 " to %" PRIu64 ": cannot read the file at offset %" PRIu64
                    "; transfer dropped (the core retries)", t->index, t->to, t->next);
            drop(x, t);
            return -1;
        }
        if (send_chunk(x, t, t->next, x->buf, got) != 0) break; /* queue full: the next tick retries */
        t->next += got;
    }
    return 0;
}

int tn_snapxfer_start(tn_snapxfer *x, const char *snap_dir, uint64_t to, uint64_t term, uint64_t index,
                      uint64_t snap_term, int64_t now_ms)
{
    xfer *t = find(x, to);
    if (t && t->done && (t->index != index || t->snap_term != snap_term || now_ms - t->done_ms >= x->o.stall_ms)) {
        drop(x, t); /* asked again well after delivery: the receiver may have lost it; it will say so */
        t = NULL;
    }
    if (t && t->index == index && t->snap_term == snap_term) {
        if (term > t->term) t->term = term;
        t->request_ms = now_ms;
        return TN_SUCCESS;
    }
    tn_snapreader *rdr = NULL;
    tn_snap_meta meta;
    char err[256];
    int rc = tn_snapreader_open(snap_dir, &rdr, &meta, err, sizeof err);
    if (rc != TN_SUCCESS) {
        if (rc != TN_NOT_FOUND) xlog(x, "error: snapshot %" PRIu64 " to %" PRIu64 ": %s", index, to, err);
        return rc;
    }
    if (meta.index != index || meta.term != snap_term) {
        tn_snapreader_close(rdr);
        return TN_NOT_FOUND;
    }
    if (t) {
        xlog(x, "snapshot %" PRIu64 " to %" PRIu64 " superseded by snapshot %" PRIu64, t->index, to, index);
        drop(x, t);
    }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 4;
        xfer *xs = realloc(x->xs, cap * sizeof *xs);
        if (!xs) {
            tn_snapreader_close(rdr);
            return TN_NOMEM;
        }
        x->xs = xs;
        x->cap = cap;
    }
    t = &x->xs[x->n++];
    memset(t, 0, sizeof *t);
    t->to = to;
    t->term = term;
    t->index = index;
    t->snap_term = snap_term;
    t->total = meta.file_size;
    t->rdr = rdr;
    t->request_ms = now_ms;
    xlog(x, "sending snapshot %" PRIu64 " (%" PRIu64 " bytes in %zu KiB chunks) to %" PRIu64 ", window %u", index,
         meta.file_size, x->o.chunk / 1024, to, x->o.window);
    send_probe(x, t, now_ms);
    return TN_SUCCESS;
}

void tn_snapxfer_on_ack(tn_snapxfer *x, uint64_t from, const tn_snapack *a, int64_t now_ms)
{
    xfer *t = find(x, from);
    if (!t || t->done || a->index != t->index || a->snap_term != t->snap_term || a->have > t->total) return;
    if (a->have == t->total) {
        xlog(x, "snapshot %" PRIu64 " delivered to %" PRIu64 " (%" PRIu64 " bytes)", t->index, from, t->total);
        t->done = 1;
        t->done_ms = now_ms;
        tn_snapreader_close(t->rdr);
        t->rdr = NULL;
        return;
    }
    if (t->probing) {
        t->probing = 0;
        t->rewound = 0;
        t->acked = t->next = a->have;
        t->progress_ms = now_ms;
        if (a->have)
            xlog(x, "resuming snapshot %" PRIu64 " to %" PRIu64 " at offset %" PRIu64 " of %" PRIu64, t->index,
                 from, a->have, t->total);
    } else if (a->have > t->acked) {
        t->acked = a->have;
        if (t->next < a->have) t->next = a->have;
        t->rewound = 0;
        t->progress_ms = now_ms;
    } else if (a->have < t->acked) {
        xlog(x, "snapshot %" PRIu64 " to %" PRIu64 ": the receiver holds only %" PRIu64 " bytes now (had %" PRIu64
                "); continuing there", t->index, from, a->have, t->acked);
        t->acked = t->next = a->have;
        t->rewound = 1; /* chunks still in flight will be refused too: one rewind is enough */
        t->progress_ms = now_ms;
    } else if (t->next > a->have && !t->rewound) {
        t->next = a->have; /* a chunk was refused after a hole: send again from what it holds */
        t->rewound = 1;
    }
    pump(x, t);
}

void tn_snapxfer_tick(tn_snapxfer *x, int64_t now_ms)
{
    for (size_t i = 0; i < x->n;) {
        xfer *t = &x->xs[i];
        if (t->done) {
            if (now_ms - t->done_ms >= x->o.stall_ms) drop(x, t); /* slot i now holds another transfer */
            else i++;
            continue;
        }
        if (now_ms - t->request_ms >= x->o.abandon_ms) {
            xlog(x, "snapshot %" PRIu64 " to %" PRIu64 " abandoned (no longer requested)", t->index, t->to);
            drop(x, t);
            continue; /* slot i now holds another transfer */
        }
        if (now_ms - t->progress_ms >= x->o.stall_ms) {
            xlog(x, "snapshot %" PRIu64 " to %" PRIu64 ": no progress for %" PRId64 " ms at offset %" PRIu64
                    "; asking the receiver where it stands", t->index, t->to, now_ms - t->progress_ms, t->acked);
            send_probe(x, t, now_ms);
        }
        if (pump(x, t) == 0) i++;
    }
}

void tn_snapxfer_cancel(tn_snapxfer *x, uint64_t to)
{
    for (size_t i = 0; i < x->n;) {
        if (to == 0 || x->xs[i].to == to) drop(x, &x->xs[i]);
        else i++;
    }
}

int tn_snapxfer_info_of(const tn_snapxfer *x, uint64_t to, tn_snapxfer_info *info)
{
    const xfer *t = find(x, to);
    if (!t) return TN_NOT_FOUND;
    info->index = t->index;
    info->snap_term = t->snap_term;
    info->total = t->total;
    info->acked = t->acked;
    info->next = t->next;
    info->probing = t->probing;
    info->done = t->done;
    return TN_SUCCESS;
}
