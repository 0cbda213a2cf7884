/* test_snapxfer.c — InstallSnapshot sender: payload codec bounds, the window, loss recovery, resumption
 * after a receiver or a sender restart, superseding, stale acks. A small in-test network queues the
 * payloads; the in-test receiver is a tn_snapwriter answering every chunk with an ack, as node.c does. */
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapfile.h"
#include "snapxfer.h"
#include "tn_code.h"

#define CHUNK 4096u
#define WINDOW 3u
#define STALL_MS 1000
#define ABANDON_MS 10000
#define PEER 7
#define MAX_MSGS 256

typedef struct msg {
    uint8_t *p;
    size_t len;
} msg;

typedef struct fixture {
    char root[64], src[96], dst[96];
    uint8_t *image;
    size_t image_len;
    uint64_t total; /* file size of the snapshot in src */
    /* network: payloads from the sender, FIFO */
    msg q[MAX_MSGS];
    size_t q_head, q_n;
    int refuse;        /* send() refuses */
    int drop_data_nth; /* drop the nth data chunk sent (1-based), 0 = none */
    int data_sent;
    uint64_t max_unacked; /* largest (end of a sent chunk) - (sender's acked offset) */
    tn_snapxfer *x;
    char log[16384];
    /* receiver */
    tn_snapwriter *w;
    uint64_t installed;
} fixture;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int on_send(void *arg, uint64_t to, const uint8_t *p, size_t len)
{
    fixture *f = arg;
    tn_snapchunk c;
    if (f->refuse) return -1;
    if (to != PEER) return 0; /* another peer: not followed by these tests */
    assert_int_equal(tn_snapchunk_decode(p, len, &c), TN_SUCCESS);
    if (c.len) {
        tn_snapxfer_info info;
        assert_int_equal(tn_snapxfer_info_of(f->x, PEER, &info), TN_SUCCESS);
        if (c.offset + c.len - info.acked > f->max_unacked) f->max_unacked = c.offset + c.len - info.acked;
        if (++f->data_sent == f->drop_data_nth) return 0; /* lost on the way */
    }
    assert_true(f->q_n < MAX_MSGS);
    msg *m = &f->q[(f->q_head + f->q_n++) % MAX_MSGS];
    m->p = malloc(len);
    assert_non_null(m->p);
    memcpy(m->p, p, len);
    m->len = len;
    return 0;
}

static void on_log(void *arg, const char *line)
{
    fixture *f = arg;
    size_t used = strlen(f->log);
    snprintf(f->log + used, sizeof f->log - used, "%s\n", line);
}

static tn_snapxfer *new_sender(fixture *f)
{
    tn_snapxfer_opts o = {CHUNK, WINDOW, STALL_MS, ABANDON_MS, on_send, on_log, f};
    tn_snapxfer *x = tn_snapxfer_new(&o);
    assert_non_null(x);
    return x;
}

static void save_snapshot(fixture *f, uint64_t index, uint64_t term, size_t image_len, unsigned seed)
{
    char err[256];
    free(f->image);
    f->image = malloc(image_len);
    assert_non_null(f->image);
    srand(seed);
    for (size_t i = 0; i < image_len; i++) f->image[i] = (uint8_t)rand();
    f->image_len = image_len;
    assert_int_equal(tn_snapfile_save(f->src, index, term, "conf", 4, f->image, image_len, err, sizeof err),
                     TN_SUCCESS);
    f->total = TN_SNAP_OVERHEAD + 4 + image_len;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->root, sizeof f->root, "/tmp/tn-snapxfer-XXXXXX");
    if (!mkdtemp(f->root)) return -1;
    snprintf(f->src, sizeof f->src, "%s/src", f->root);
    snprintf(f->dst, sizeof f->dst, "%s/dst", f->root);
    save_snapshot(f, 50, 3, 10 * CHUNK + 123, 1); /* 11 chunks */
    f->x = new_sender(f);
    *state = f;
    return 0;
}

static void drop_queue(fixture *f)
{
    while (f->q_n) {
        free(f->q[f->q_head].p);
        f->q_head = (f->q_head + 1) % MAX_MSGS;
        f->q_n--;
    }
}

static int teardown(void **state)
{
    fixture *f = *state;
    drop_queue(f);
    tn_snapxfer_free(f->x);
    tn_snapwriter_close(f->w);
    nftw(f->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f->image);
    free(f);
    return 0;
}

/* The receiver's answer to one chunk (what node.c does): write, ack what is durable, install when whole. */
static void receive(fixture *f, const msg *m, tn_snapack *ack)
{
    tn_snapchunk c;
    char err[256];
    assert_int_equal(tn_snapchunk_decode(m->p, m->len, &c), TN_SUCCESS);
    *ack = (tn_snapack){c.term, c.index, c.snap_term, 0};
    if (f->installed >= c.index) {
        ack->have = c.total;
        return;
    }
    if (!f->w) assert_int_equal(tn_snapwriter_begin(f->dst, c.index, c.snap_term, c.total, &f->w, err, sizeof err),
                                TN_SUCCESS);
    int rc = tn_snapwriter_write(f->w, c.offset, c.data, c.len, err, sizeof err);
    assert_true(rc == TN_SUCCESS || rc == TN_BAD_REQUEST); /* BAD_REQUEST: a hole */
    ack->have = tn_snapwriter_have(f->w);
    if (ack->have == c.total) {
        tn_snap_meta meta;
        tn_snapwriter *w = f->w;
        f->w = NULL;
        assert_int_equal(tn_snapwriter_finish(w, &meta, err, sizeof err), TN_SUCCESS);
        f->installed = c.index;
    }
}

/* Delivers up to `max` queued chunks (each answered at once); returns how many. */
static size_t deliver(fixture *f, size_t max, int64_t now)
{
    size_t done = 0;
    while (f->q_n && done < max) {
        msg m = f->q[f->q_head];
        f->q_head = (f->q_head + 1) % MAX_MSGS;
        f->q_n--;
        tn_snapack ack;
        receive(f, &m, &ack);
        free(m.p);
        tn_wr w;
        tn_wr_init(&w);
        tn_snapack_encode(&ack, &w);
        tn_snapack dec;
        assert_int_equal(tn_snapack_decode(w.p, w.len, &dec), TN_SUCCESS);
        tn_wr_free(&w);
        tn_snapxfer_on_ack(f->x, PEER, &dec, now);
        done++;
    }
    return done;
}

/* The next queued payload (without consuming it). */
static void peek(fixture *f, tn_snapchunk *c)
{
    assert_true(f->q_n > 0);
    const msg *m = &f->q[f->q_head];
    assert_int_equal(tn_snapchunk_decode(m->p, m->len, c), TN_SUCCESS);
}

static void assert_received_image(fixture *f, uint64_t index)
{
    tn_snap_meta meta;
    uint8_t *conf = NULL, *data = NULL;
    char err[256];
    assert_int_equal(tn_snapfile_load(f->dst, &meta, &conf, &data, err, sizeof err), TN_SUCCESS);
    assert_int_equal(meta.index, index);
    assert_int_equal(meta.data_len, f->image_len);
    assert_memory_equal(data, f->image, f->image_len);
    free(conf);
    free(data);
}

/* ------------------------------------------------------------------------------------------------ */

static void test_codec_bounds(void **state)
{
    (void)state;
    uint8_t bytes[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    tn_snapchunk c = {5, 300, 4, 1000, 990, bytes, 10}, d;
    tn_wr w;
    tn_wr_init(&w);
    tn_snapchunk_encode(&c, &w);
    assert_false(w.oom);
    assert_int_equal(tn_snapchunk_decode(w.p, w.len, &d), TN_SUCCESS);
    assert_int_equal(d.term, 5);
    assert_int_equal(d.index, 300);
    assert_int_equal(d.snap_term, 4);
    assert_int_equal(d.total, 1000);
    assert_int_equal(d.offset, 990);
    assert_int_equal(d.len, 10);
    assert_memory_equal(d.data, bytes, 10);
    /* every truncation inside the header is refused (the bytes after it are the chunk's data) */
    size_t header = w.len - 10;
    for (size_t n = 0; n < header; n++) assert_int_equal(tn_snapchunk_decode(w.p, n, &d), TN_BAD_REQUEST);
    /* one byte too many runs past total */
    tn_wr_u8(&w, 11);
    assert_int_equal(tn_snapchunk_decode(w.p, w.len, &d), TN_BAD_REQUEST);
    w.len--;
    w.p[1] = 'A';
    assert_int_equal(tn_snapchunk_decode(w.p, w.len, &d), TN_BAD_REQUEST);
    w.p[1] = 'S';
    w.p[2] = 2;
    assert_int_equal(tn_snapchunk_decode(w.p, w.len, &d), TN_BAD_REQUEST);
    w.p[2] = 1;
    w.p[0] = 1;
    assert_int_equal(tn_snapchunk_decode(w.p, w.len, &d), TN_BAD_REQUEST);
    tn_wr_free(&w);
    /* offset beyond total, even without bytes */
    tn_snapchunk bad = {1, 2, 1, 100, 101, NULL, 0};
    tn_wr_init(&w);
    tn_snapchunk_encode(&bad, &w);
    assert_int_equal(tn_snapchunk_decode(w.p, w.len, &d), TN_BAD_REQUEST);
    tn_wr_free(&w);

    tn_snapack a = {9, 300, 4, UINT64_MAX - 1}, b;
    tn_wr_init(&w);
    tn_snapack_encode(&a, &w);
    assert_int_equal(tn_snapack_decode(w.p, w.len, &b), TN_SUCCESS);
    assert_int_equal(b.term, 9);
    assert_int_equal(b.index, 300);
    assert_int_equal(b.snap_term, 4);
    assert_int_equal(b.have, UINT64_MAX - 1);
    for (size_t n = 0; n < w.len; n++) assert_int_equal(tn_snapack_decode(w.p, n, &b), TN_BAD_REQUEST);
    tn_wr_u8(&w, 0);
    assert_int_equal(tn_snapack_decode(w.p, w.len, &b), TN_BAD_REQUEST); /* trailing byte */
    w.len--;
    w.p[1] = 'S';
    assert_int_equal(tn_snapack_decode(w.p, w.len, &b), TN_BAD_REQUEST);
    tn_wr_free(&w);
    /* an over-long varint */
    uint8_t longv[16] = {TN_SNAPXFER_MAGIC, 'A', 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 1};
    assert_int_equal(tn_snapack_decode(longv, sizeof longv, &b), TN_BAD_REQUEST);
}

static void test_windowed_transfer(void **state)
{
    fixture *f = *state;
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 3, 0), TN_SUCCESS);
    /* first a probe at offset 0, nothing else until it is answered */
    assert_int_equal(f->q_n, 1);
    tn_snapchunk c;
    peek(f, &c);
    assert_int_equal(c.len, 0);
    assert_int_equal(c.offset, 0);
    assert_int_equal(c.total, f->total);
    assert_int_equal(c.term, 3);
    assert_non_null(strstr(f->log, "sending snapshot 50 ("));
    assert_int_equal(deliver(f, 1, 1), 1);
    /* the answer opens the window: exactly WINDOW chunks, and no more until acks come back */
    assert_int_equal(f->q_n, WINDOW);
    peek(f, &c);
    assert_int_equal(c.offset, 0);
    assert_int_equal(c.len, CHUNK);
    /* the core asking again for the same snapshot changes nothing (no restart from 0) */
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 3, 2), TN_SUCCESS);
    assert_int_equal(f->q_n, WINDOW);
    for (int64_t now = 3; f->q_n; now++) deliver(f, 1, now);
    assert_int_equal(f->installed, 50);
    assert_received_image(f, 50);
    assert_true(f->max_unacked <= WINDOW * CHUNK);
    assert_int_equal(f->max_unacked, WINDOW * CHUNK);
    assert_int_equal(f->data_sent, (f->total + CHUNK - 1) / CHUNK); /* every byte once */
    assert_non_null(strstr(f->log, "snapshot 50 delivered to 7"));
    assert_null(strstr(f->log, "resuming"));
    tn_snapxfer_info info;
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER, &info), TN_SUCCESS);
    assert_true(info.done);
    /* asked again right after delivery (the core had not heard yet): nothing is sent */
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 3, 100), TN_SUCCESS);
    assert_int_equal(f->q_n, 0);
    tn_snapxfer_tick(f->x, 100);
    assert_int_equal(f->q_n, 0);
    /* a delivered transfer is forgotten after stall_ms */
    tn_snapxfer_tick(f->x, 100 + STALL_MS);
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER, &info), TN_NOT_FOUND);
    /* asked again later: a new probe, which the receiver answers with "all of it" */
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 3, 200 + STALL_MS), TN_SUCCESS);
    assert_int_equal(f->q_n, 1);
    deliver(f, 10, 201 + STALL_MS);
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER, &info), TN_SUCCESS);
    assert_true(info.done);
    assert_int_equal(f->q_n, 0);
    assert_int_equal(f->data_sent, (f->total + CHUNK - 1) / CHUNK); /* still every byte once */
}

static void test_lost_chunk_is_resent_without_waiting(void **state)
{
    fixture *f = *state;
    f->drop_data_nth = 2; /* bytes [CHUNK, 2*CHUNK) never arrive */
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 3, 0), TN_SUCCESS);
    for (int64_t now = 1; f->q_n; now++) deliver(f, 1, now); /* never ticks: acks alone recover */
    assert_int_equal(f->installed, 50);
    assert_received_image(f, 50);
    /* the refused chunk(s) after the hole are resent once, not the whole file */
    size_t chunks = (size_t)((f->total + CHUNK - 1) / CHUNK);
    assert_true((size_t)f->data_sent <= chunks + WINDOW);
}

static void test_receiver_restart_resumes(void **state)
{
    fixture *f = *state;
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 3, 0), TN_SUCCESS);
    deliver(f, 5, 1); /* the probe and 4 chunks */
    tn_snapxfer_info info;
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER, &info), TN_SUCCESS);
    assert_int_equal(info.acked, 4 * CHUNK);
    /* the receiver crashes: what was in flight is lost, the .part stays */
    tn_snapwriter_close(f->w);
    f->w = NULL;
    drop_queue(f);
    /* no progress for a while: the sender asks where the receiver stands, from the acked offset */
    tn_snapxfer_tick(f->x, STALL_MS - 1);
    assert_int_equal(f->q_n, 0);
    tn_snapxfer_tick(f->x, 1 + STALL_MS);
    assert_int_equal(f->q_n, 1);
    tn_snapchunk c;
    peek(f, &c);
    assert_int_equal(c.len, 0);
    assert_int_equal(c.offset, 4 * CHUNK);
    assert_non_null(strstr(f->log, "asking the receiver where it stands"));
    /* the restarted receiver reopens its .part and answers with what it holds */
    int sent_before = f->data_sent;
    deliver(f, 1, STALL_MS + 2);
    assert_non_null(strstr(f->log, "resuming snapshot 50 to 7 at offset 16384"));
    peek(f, &c);
    assert_int_equal(c.offset, 4 * CHUNK);
    for (int64_t now = STALL_MS + 3; f->q_n; now++) deliver(f, 1, now);
    assert_received_image(f, 50);
    /* the first four chunks were not sent again */
    assert_int_equal(f->data_sent - sent_before, (f->total + CHUNK - 1) / CHUNK - 4);
}

static void test_sender_restart_resumes(void **state)
{
    fixture *f = *state;
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 3, 0), TN_SUCCESS);
    deliver(f, 7, 1); /* the probe and 6 chunks */
    /* the leader restarts (new sender, nothing in flight survives); the receiver keeps its writer */
    tn_snapxfer_free(f->x);
    drop_queue(f);
    f->x = new_sender(f);
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 4, 50, 3, 0), TN_SUCCESS);
    tn_snapchunk c;
    peek(f, &c);
    assert_int_equal(c.len, 0);
    assert_int_equal(c.offset, 0);
    assert_int_equal(c.term, 4);
    deliver(f, 1, 1);
    assert_non_null(strstr(f->log, "resuming snapshot 50 to 7 at offset 24576"));
    peek(f, &c);
    assert_int_equal(c.offset, 6 * CHUNK);
    assert_int_equal(c.term, 4);
    for (int64_t now = 2; f->q_n; now++) deliver(f, 1, now);
    assert_received_image(f, 50);
}

static void test_receiver_lost_its_part(void **state)
{
    fixture *f = *state;
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 3, 0), TN_SUCCESS);
    deliver(f, 4, 1);
    /* the receiver throws its partial file away (e.g. it failed verification) */
    tn_snapwriter_abort(f->w);
    f->w = NULL;
    for (int64_t now = 2; f->q_n; now++) deliver(f, 1, now);
    assert_non_null(strstr(f->log, "the receiver holds only"));
    assert_int_equal(f->installed, 50);
    assert_received_image(f, 50);
}

static void test_superseded_mismatch_and_stale_acks(void **state)
{
    fixture *f = *state;
    /* the core's snapshot is not the newest file: the caller falls back to the Raft message */
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 49, 3, 0), TN_NOT_FOUND);
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 2, 0), TN_NOT_FOUND);
    char empty[128];
    snprintf(empty, sizeof empty, "%s/none", f->root);
    assert_int_equal(tn_snapxfer_start(f->x, empty, PEER, 3, 50, 3, 0), TN_NOT_FOUND);
    assert_int_equal(f->q_n, 0);

    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 3, 0), TN_SUCCESS);
    deliver(f, 3, 1);
    tn_snapxfer_info info;
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER, &info), TN_SUCCESS);
    uint64_t acked = info.acked;
    assert_true(acked > 0);
    /* acks for another snapshot, from another peer, or claiming more than the file change nothing */
    tn_snapack other = {3, 49, 3, 8 * CHUNK}, huge = {3, 50, 3, f->total + 1};
    tn_snapxfer_on_ack(f->x, PEER, &other, 2);
    tn_snapxfer_on_ack(f->x, PEER + 1, &huge, 2);
    tn_snapxfer_on_ack(f->x, PEER, &huge, 2);
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER, &info), TN_SUCCESS);
    assert_int_equal(info.acked, acked);
    assert_int_equal(info.index, 50);

    /* a newer snapshot replaces the running transfer (the old reader keeps its unlinked file open) */
    drop_queue(f);
    save_snapshot(f, 80, 4, 3 * CHUNK, 2);
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 4, 80, 4, 3), TN_SUCCESS);
    assert_non_null(strstr(f->log, "snapshot 50 to 7 superseded by snapshot 80"));
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER, &info), TN_SUCCESS);
    assert_int_equal(info.index, 80);
    assert_int_equal(info.acked, 0);
    assert_true(info.probing);
    tn_snapwriter_close(f->w); /* the receiver moves on too (begin drops the other .part) */
    f->w = NULL;
    for (int64_t now = 4; f->q_n; now++) deliver(f, 1, now);
    assert_received_image(f, 80);

    /* a transfer the core stops asking for is abandoned; cancel drops one at once */
    save_snapshot(f, 90, 4, CHUNK, 3);
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 4, 90, 4, 100), TN_SUCCESS);
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER + 1, 4, 90, 4, 100 + ABANDON_MS / 2), TN_SUCCESS);
    tn_snapxfer_tick(f->x, 100 + ABANDON_MS);
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER, &info), TN_NOT_FOUND);
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER + 1, &info), TN_SUCCESS);
    assert_non_null(strstr(f->log, "snapshot 90 to 7 abandoned"));
    tn_snapxfer_cancel(f->x, 0);
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER + 1, &info), TN_NOT_FOUND);
    drop_queue(f);
}

static void test_refused_send_retried_on_tick(void **state)
{
    fixture *f = *state;
    assert_int_equal(tn_snapxfer_start(f->x, f->src, PEER, 3, 50, 3, 0), TN_SUCCESS);
    f->refuse = 1; /* the transport queue is full */
    deliver(f, 1, 1);
    assert_int_equal(f->q_n, 0);
    tn_snapxfer_info info;
    assert_int_equal(tn_snapxfer_info_of(f->x, PEER, &info), TN_SUCCESS);
    assert_int_equal(info.next, 0); /* nothing counted as sent */
    f->refuse = 0;
    tn_snapxfer_tick(f->x, 2);
    assert_int_equal(f->q_n, WINDOW);
    for (int64_t now = 3; f->q_n; now++) deliver(f, 1, now);
    assert_received_image(f, 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_bounds),
        cmocka_unit_test_setup_teardown(test_windowed_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_chunk_is_resent_without_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receiver_restart_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_restart_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receiver_lost_its_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_superseded_mismatch_and_stale_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_send_retried_on_tick, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
