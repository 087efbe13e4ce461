# Runs the ThreadSanitizer canary and requires TSan's report of its race.
#   cmake -DCANARY=path/to/sil_tsan_canary -P tsan_canary_check.cmake
# TSAN_OPTIONS comes from the environment (the tsan test preset's, with the
# project's suppressions); halt_on_error is turned off here so that a
# hand-off report the suppressions missed cannot stop the canary before its
# own race is reported. Passes only if the output has a data race report
# and names the canary's variable (TSan's "Location is global
# 'canary_value'"), so that another report cannot stand in for it.
if(NOT CANARY)
  message(FATAL_ERROR "usage: cmake -DCANARY=<binary> -P tsan_canary_check.cmake")
endif()
set(ENV{TSAN_OPTIONS} "$ENV{TSAN_OPTIONS} halt_on_error=0 exitcode=0")
execute_process(COMMAND ${CANARY} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc
                TIMEOUT 120)
set(all "${out}\n${err}")
string(FIND "${all}" "WARNING: ThreadSanitizer: data race" race)
string(FIND "${all}" "canary_value" named)
if(race EQUAL -1 OR named EQUAL -1)
  message(FATAL_ERROR
    "the canary's data race was not reported (exit ${rc}): tests/tsan.supp hides real races.\n"
    "TSAN_OPTIONS=$ENV{TSAN_OPTIONS}\n--- output ---\n${all}")
endif()
string(REGEX MATCHALL "WARNING: ThreadSanitizer: data race" reports "${all}")
list(LENGTH reports n)
message(STATUS "the canary's race was reported (${n} data race report(s) in all)")
