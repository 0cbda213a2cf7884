/* test_txn.c — the client transaction buffer (ext/txn/txn.h) on an embedded engine: row state and
 * read-your-writes bookkeeping for tree and collection ops, savepoints, the read set, and commits that
 * apply all or nothing (a stale read fails the commit, naming the key, and nothing is applied). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "client.h"
#include "coll.h"
#include "conn.h"
#include "tn_code.h"
#include "txn.h"
#include "wire.h"

#define K(s) (const uint8_t *)(s), strlen(s)

typedef struct fixture {
    tn_conn *conn;
    tn_txn_registry *reg;
    tn_client *client;
    tn_txn *txn;
    uint32_t coll;
} fixture;

/* One request with the given ops on the fixture's client; returns the response (caller clears). */
static void call(fixture *f, tn_op *ops, size_t n, tn_wr *buf, tn_resp *resp)
{
    tn_req req = {.req_id = 1, .n_ops = n, .ops = ops};
    tn_wr reqb;
    tn_wr_init(&reqb);
    tn_wr_init(buf);
    assert_int_equal(tn_req_encode(&req, &reqb), TN_SUCCESS);
    assert_int_equal(tn_client_call(f->client, &reqb, buf), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(buf->p, buf->len, resp), TN_SUCCESS);
    tn_wr_free(&reqb);
}

static uint64_t rev_of(fixture *f, const char *key)
{
    tn_op op = {.opcode = TN_OP_KV_GET, .key = K(key)};
    tn_wr buf;
    tn_resp resp;
    call(f, &op, 1, &buf, &resp);
    uint64_t rev = resp.results[0].code == TN_SUCCESS ? resp.results[0].entries[0].update_rev : 0;
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    return rev;
}

static int setup(void **state)
{
    static int n;
    fixture *f = calloc(1, sizeof *f);
    char engine[32], *err = NULL;
    snprintf(engine, sizeof engine, "txnunit%d", n++);
    f->conn = tn_conn_new();
    f->reg = tn_txn_registry_new(f->conn);
    assert_non_null(f->reg);
    assert_int_equal(tn_conn_client(f->conn, NULL, engine, &f->client, &err), SQLITE_OK);
    assert_int_equal(tn_txn_acquire(f->reg, f->client, &f->txn), TN_SUCCESS);
    assert_int_equal(tn_txn_collection(f->txn, "acc", "id", &f->coll), TN_SUCCESS);
    /* a directory and a collection to work with */
    tn_coll_column cols[2] = {{.name = "id", .name_len = 2, .type = TN_T_INTEGER, .role = TN_R_PK},
                              {.name = "bal", .name_len = 3, .type = TN_T_INTEGER, .role = TN_R_PLAIN}};
    tn_coll_schema s = {.cols = cols, .n_cols = 2};
    tn_wr p;
    tn_wr_init(&p);
    assert_int_equal(tn_coll_create_encode(&s, &p), TN_SUCCESS);
    tn_op ops[2] = {{.opcode = TN_OP_KV_MKDIR, .key = K("d")},
                    {.opcode = TN_OP_COLL_WRITE, .key = K("acc"), .value = p.p, .value_len = p.len}};
    tn_wr buf;
    tn_resp resp;
    call(f, ops, 2, &buf, &resp);
    assert_true(tn_code_ok(resp.results[0].code));
    assert_true(tn_code_ok(resp.results[1].code));
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    tn_wr_free(&p);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tn_txn_release(f->reg, f->txn);
    tn_conn_release(f->conn, f->client);
    tn_txn_registry_unref(f->reg);
    tn_conn_free(f->conn);
    free(f);
    return 0;
}

static tn_op kv_put(const char *key, const char *value)
{
    tn_op op = {.opcode = TN_OP_KV_PUT, .key = K(key), .value = K(value)};
    return op;
}

static void add_row(fixture *f, uint8_t mode, int64_t id, uint64_t rev)
{
    tn_coll_row_op op = {.mode = mode, .pk = tn_val_int(id), .expect_rev = rev, .payload = (const uint8_t *)"p",
                         .payload_len = 1};
    assert_int_equal(tn_txn_add(f->txn, f->coll, &op), TN_SUCCESS);
}

static int count_written(void *arg, const uint8_t *key, size_t len, int state, const uint8_t *op, size_t op_len)
{
    (void)key;
    (void)len;
    (void)op_len;
    int *n = arg;
    if (state == TN_TXN_ROW_PRESENT) assert_non_null(op);
    n[state]++;
    return 0;
}

static void test_state_and_savepoints(void **state)
{
    fixture *f = *state;
    tn_txn *t = f->txn;
    tn_op p1 = kv_put("d.a", "1"), p2 = kv_put("d.a", "22"), rm = {.opcode = TN_OP_KV_REMOVE, .key = K("d.b")};
    assert_int_equal(tn_txn_kv_add(t, &p1), TN_SUCCESS);
    add_row(f, TN_ROW_INSERT, 1, 0);
    assert_int_equal(tn_txn_savepoint(t, 0), TN_SUCCESS);
    assert_int_equal(tn_txn_kv_add(t, &p2), TN_SUCCESS);
    assert_int_equal(tn_txn_kv_add(t, &rm), TN_SUCCESS);
    add_row(f, TN_ROW_DELETE, 1, 0);
    add_row(f, TN_ROW_UPSERT, 2, 0);
    assert_int_equal(tn_txn_pending(t), 6);
    assert_int_equal(tn_txn_table_pending(t, TN_TXN_KV), 3);
    assert_int_equal(tn_txn_table_pending(t, f->coll), 3);
    const uint8_t *v;
    size_t vlen;
    int is_dir = -1;
    assert_int_equal(tn_txn_kv_state(t, K("d.a"), &is_dir, &v, &vlen, NULL), TN_TXN_ROW_PRESENT);
    assert_int_equal(is_dir, 0);
    assert_int_equal(vlen, 2);
    assert_memory_equal(v, "22", 2);
    assert_int_equal(tn_txn_kv_state(t, K("d.b"), NULL, NULL, NULL, NULL), TN_TXN_ROW_ABSENT);
    assert_int_equal(tn_txn_kv_state(t, K("d.c"), NULL, NULL, NULL, NULL), TN_TXN_ROW_UNKNOWN);
    tn_val one = tn_val_int(1), two = tn_val_int(2);
    int written = 0;
    assert_int_equal(tn_txn_row_state(t, f->coll, &one, &written), TN_TXN_ROW_ABSENT);
    assert_int_equal(written, 1);
    assert_int_equal(tn_txn_row_state(t, f->coll, &two, NULL), TN_TXN_ROW_PRESENT);
    int n[3] = {0};
    tn_txn_each_written(t, f->coll, count_written, n);
    assert_int_equal(n[TN_TXN_ROW_PRESENT], 1);
    assert_int_equal(n[TN_TXN_ROW_ABSENT], 1);
    /* back to the mark: d.a holds "1" again, d.b untouched, row 1 present, row 2 unknown */
    assert_int_equal(tn_txn_rollback_to(t, 0), TN_SUCCESS);
    assert_int_equal(tn_txn_pending(t), 2);
    assert_int_equal(tn_txn_kv_state(t, K("d.a"), NULL, &v, &vlen, NULL), TN_TXN_ROW_PRESENT);
    assert_int_equal(vlen, 1);
    assert_int_equal(tn_txn_kv_state(t, K("d.b"), NULL, NULL, NULL, NULL), TN_TXN_ROW_UNKNOWN);
    assert_int_equal(tn_txn_row_state(t, f->coll, &one, NULL), TN_TXN_ROW_PRESENT);
    assert_int_equal(tn_txn_row_state(t, f->coll, &two, NULL), TN_TXN_ROW_UNKNOWN);
    /* the read set: first read wins, duplicates are not added */
    assert_int_equal(tn_txn_read(t, TN_TXN_KV, K("d.x"), 0), TN_SUCCESS);
    assert_int_equal(tn_txn_read(t, TN_TXN_KV, K("d.x"), 5), TN_SUCCESS);
    assert_int_equal(tn_txn_reads(t), 1);
    tn_txn_clear(t);
    assert_int_equal(tn_txn_pending(t), 0);
    assert_int_equal(tn_txn_reads(t), 0);
    /* an op that is not a tree write is refused */
    tn_op get = {.opcode = TN_OP_KV_GET, .key = K("d.a")};
    assert_int_equal(tn_txn_kv_add(t, &get), TN_CLIENT_REQ_ERROR);
}

/* A mixed commit applies everything in one request. */
static void test_commit_mixed(void **state)
{
    fixture *f = *state;
    tn_txn *t = f->txn;
    char *msg = NULL;
    tn_op p = kv_put("d.k", "v");
    assert_int_equal(tn_txn_kv_add(t, &p), TN_SUCCESS);
    add_row(f, TN_ROW_INSERT, 7, 0);
    assert_int_equal(tn_txn_commit(t, &msg), SQLITE_OK);
    assert_null(msg);
    assert_int_equal(tn_txn_commits(t), 1);
    assert_int_not_equal(rev_of(f, "d.k"), 0);
    /* nothing buffered: nothing sent, SQLITE_OK */
    assert_int_equal(tn_txn_commit(t, &msg), SQLITE_OK);
    assert_int_equal(tn_txn_commits(t), 1);
}

/* A key read at one revision and changed before the commit fails the commit with SQLITE_BUSY naming
 * the key; the transaction's writes of both kinds are not applied; the failure sticks until cleared. */
static void test_stale_read_fails_whole_commit(void **state)
{
    fixture *f = *state;
    tn_txn *t = f->txn;
    char *msg = NULL;
    tn_op seed = kv_put("d.r", "1");
    tn_wr buf;
    tn_resp resp;
    call(f, &seed, 1, &buf, &resp);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    uint64_t rev = rev_of(f, "d.r");
    assert_int_equal(tn_txn_read(t, TN_TXN_KV, K("d.r"), rev), TN_SUCCESS);
    tn_op w = kv_put("d.w", "x");
    assert_int_equal(tn_txn_kv_add(t, &w), TN_SUCCESS);
    add_row(f, TN_ROW_INSERT, 8, 0);
    tn_op change = kv_put("d.r", "2");
    call(f, &change, 1, &buf, &resp);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    assert_int_equal(tn_txn_commit(t, &msg), SQLITE_BUSY);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "REVISION_MISMATCH"));
    assert_non_null(strstr(msg, "'d.r' changed since it was read"));
    sqlite3_free(msg);
    assert_int_equal(rev_of(f, "d.w"), 0);
    /* the failure repeats until the transaction is cleared (rolled back) */
    assert_int_equal(tn_txn_commit(t, &msg), SQLITE_BUSY);
    sqlite3_free(msg);
    tn_txn_clear(t);
    /* a collection row read as absent that appears meanwhile fails too, naming the row */
    tn_wr pk;
    tn_wr_init(&pk);
    tn_val nine = tn_val_int(9);
    tn_val_encode(&nine, &pk);
    assert_int_equal(tn_txn_read(t, f->coll, pk.p, pk.len, 0), TN_SUCCESS);
    tn_wr_free(&pk);
    assert_int_equal(tn_txn_kv_add(t, &w), TN_SUCCESS);
    tn_coll_row_op ins = {.mode = TN_ROW_INSERT, .pk = nine, .payload = (const uint8_t *)"p", .payload_len = 1};
    tn_wr rows;
    tn_wr_init(&rows);
    assert_int_equal(tn_coll_rows_encode(&ins, 1, 0, &rows), TN_SUCCESS);
    tn_op cw = {.opcode = TN_OP_COLL_WRITE, .key = K("acc"), .value = rows.p, .value_len = rows.len};
    call(f, &cw, 1, &buf, &resp);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    tn_wr_free(&rows);
    assert_int_equal(tn_txn_commit(t, &msg), SQLITE_BUSY);
    assert_non_null(strstr(msg, "row id=9 of 'acc' was added since it was read as absent"));
    sqlite3_free(msg);
    assert_int_equal(rev_of(f, "d.w"), 0);
    tn_txn_clear(t);
}

/* The buffer refuses to grow past what one request can carry. */
static void test_too_large(void **state)
{
    fixture *f = *state;
    tn_txn *t = f->txn;
    size_t big = 1024 * 1024;
    uint8_t *value = malloc(big);
    memset(value, 'v', big);
    int code = TN_SUCCESS;
    char key[32];
    for (int i = 0; i < 100 && code == TN_SUCCESS; i++) {
        snprintf(key, sizeof key, "d.big%d", i);
        tn_op op = {.opcode = TN_OP_KV_PUT, .key = K(key), .value = value, .value_len = big};
        code = tn_txn_kv_add(t, &op);
    }
    assert_int_equal(code, TN_TOO_LARGE);
    assert_true(tn_txn_bytes(t) < TN_WIRE_MAX_MESSAGE);
    tn_txn_clear(t);
    free(value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_and_savepoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_mixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_read_fails_whole_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
