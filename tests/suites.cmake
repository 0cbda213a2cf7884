# Script-driven test suites, registered with ctest so that one runner covers everything.
# Included from the top-level CMakeLists.txt.

set(TARN_HOST_ENV "TARN_BUILD_DIR=${CMAKE_BINARY_DIR}" "TARN_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
if(TARN_SANITIZE)
  # The sqlite3 shell and python3 are not instrumented, so the ASan runtime must be preloaded for them to
  # load an instrumented tarn.so. Python keeps objects alive at exit by design: leak checking is off there.
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE TARN_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  # The shell's runner applies TARN_PRELOAD to sqlite3 alone (bash, mktemp... leak and would abort).
  set(TARN_SHELL_ENV ${TARN_HOST_ENV} "TARN_PRELOAD=${TARN_LIBASAN}"
      "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
      "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0"
      "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  set(TARN_PY_ENV ${TARN_HOST_ENV} "LD_PRELOAD=${TARN_LIBASAN}"
      "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1" "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
else()
  set(TARN_SHELL_ENV ${TARN_HOST_ENV})
  set(TARN_PY_ENV ${TARN_HOST_ENV})
endif()

# SQL through the real sqlite3 shell: tests/sql/<name>.sql, output compared with <name>.expected.
file(GLOB SQL_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/sql/*.sql)
foreach(sql ${SQL_TESTS})
  get_filename_component(name ${sql} NAME_WE)
  add_test(NAME sql.${name} COMMAND ${CMAKE_SOURCE_DIR}/tests/sql/run.sh ${sql})
  set_tests_properties(sql.${name} PROPERTIES ENVIRONMENT "${TARN_SHELL_ENV}" TIMEOUT 300)
endforeach()

# Python's sqlite3 module (Debian's /usr/bin/python3): tests/python/test_<name>.py, unittest style.
file(GLOB PY_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/python/test_*.py)
foreach(py ${PY_TESTS})
  get_filename_component(name ${py} NAME_WE)
  add_test(NAME python.${name} COMMAND /usr/bin/python3 ${py})
  set_tests_properties(python.${name} PROPERTIES ENVIRONMENT "${TARN_PY_ENV}" TIMEOUT 600)
endforeach()

# The demo script must keep working.
add_test(NAME sql.demo COMMAND ${CMAKE_SOURCE_DIR}/tests/sql/run.sh ${CMAKE_SOURCE_DIR}/sql/demo.sql
         ${CMAKE_SOURCE_DIR}/tests/sql/demo.expected)
set_tests_properties(sql.demo PROPERTIES ENVIRONMENT "${TARN_SHELL_ENV}" TIMEOUT 300)

# The deterministic Raft simulator (docs/raft.md): thousands of seeded runs across 3/5/7 nodes plus the
# named regression scenarios; a smaller budget under the sanitizers, which are several times slower.
if(TARGET tarn-sim)
  if(TARN_SANITIZE)
    add_test(NAME sim.quick COMMAND tarn-sim --quick --seeds 1-2000 --scenario-seeds 30 -q)
  else()
    add_test(NAME sim.quick COMMAND tarn-sim --quick -q)
  endif()
  set_tests_properties(sim.quick PROPERTIES TIMEOUT 900)
  # Checking the checker: each deliberately broken rule must be reported as a violation.
  foreach(m commit_old_term skip_vote_persist no_log_check_vote read_without_quorum ack_before_persist
            count_unpersisted)
    add_test(NAME sim.mutation.${m} COMMAND tarn-sim --mutate ${m} --expect-violation -q)
    set_tests_properties(sim.mutation.${m} PROPERTIES TIMEOUT 600)
  endforeach()
endif()
