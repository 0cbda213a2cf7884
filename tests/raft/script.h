/* script.h — the interpreter of Raft scenario files (tests/raft/testdata, one .txt each): a line-oriented
 * script drives a cluster of the Raft test driver (driver.h) in step mode and states what must hold. The language
 * is described at the top of script.c and in docs/raft.md.
 *
 * A run fails at the first expectation that does not hold, at a command it cannot carry out (syntax, a
 * node that is down, a core call returning another code than the script expects), or when the driver's
 * invariant checks find a violation the script did not announce with `expect violation`.
 *
 * Ownership: nothing is kept between runs. Thread: any; no shared state.
 */
#ifndef TARN_RAFT_SCRIPT_H
#define TARN_RAFT_SCRIPT_H

#include <stddef.h>
#include <stdio.h>

/* Runs the scenario text (name is used in messages). Returns 0 if it passed, 1 if it failed: err holds
 * "name:line: why", and the end of the cluster's trace has been printed to out. verbose: echo every
 * command and every trace record to out as it runs. */
int tn_rt_script_run(const char *name, const char *text, FILE *out, int verbose, char *err, size_t errlen);

/* The same for a file; 1 also if it cannot be read. */
int tn_rt_script_file(const char *path, FILE *out, int verbose, char *err, size_t errlen);

#endif
