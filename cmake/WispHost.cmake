# Host toolchain: C++20 with warnings as errors, optional ASan/UBSan, GoogleTest.
#
# Every host target links `wisp::host_options`. Flags are attached per target (not
# globally) because guest images and BPF objects are built in the same tree with
# entirely different flags.

add_library(wisp_host_options INTERFACE)
add_library(wisp::host_options ALIAS wisp_host_options)
target_compile_options(wisp_host_options INTERFACE -Wall -Wextra -Werror -Wno-missing-field-initializers)
target_compile_definitions(wisp_host_options INTERFACE _GNU_SOURCE)

if(WISP_SANITIZE)
  target_compile_options(wisp_host_options INTERFACE
      -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(wisp_host_options INTERFACE -fsanitize=address,undefined)
endif()

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(GTest REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf>=1.1)
pkg_check_modules(LIBXDP REQUIRED IMPORTED_TARGET libxdp>=1.3)
pkg_check_modules(LIBELF REQUIRED IMPORTED_TARGET libelf)
include(GoogleTest)

set(WISP_FUZZ_ENABLED OFF)
if(WISP_FUZZ AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(WISP_FUZZ_ENABLED ON)
endif()

# wisp_test(NAME <name> LABEL <unit|bpf|vm|e2e> SOURCES ... [LIBS ...] [TIMEOUT s])
#
# One GoogleTest executable; every TEST() becomes its own ctest test carrying the
# label, so `ctest -L vm` or `ctest -R <behaviour>` select precisely and `ctest -j2`
# runs cases side by side. Tests that need root/KVM/BPF fail loudly without them
# (see tests/support/capabilities.h); they never skip silently.
function(wisp_test)
  cmake_parse_arguments(T "" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE wisp::host_options wisp::test_support
                        GTest::gtest_main GTest::gmock ${T_LIBS})
  gtest_discover_tests(${T_NAME}
      DISCOVERY_MODE PRE_TEST
      PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT})
  if(T_LABEL STREQUAL "unit")
    add_dependencies(wisp_unit_tests ${T_NAME})
  endif()
endfunction()

# wisp_fuzzer(NAME <name> SOURCES ... [LIBS ...] [CORPUS dir] [SECONDS n])
#
# A libFuzzer target. When fuzzing is enabled it is also registered as a ctest test
# (label `fuzz` + `unit`) that runs for a bounded time and fails on any finding.
function(wisp_fuzzer)
  cmake_parse_arguments(F "" "NAME;CORPUS;SECONDS" "SOURCES;LIBS" ${ARGN})
  if(NOT WISP_FUZZ_ENABLED)
    return()
  endif()
  if(NOT F_SECONDS)
    set(F_SECONDS 20)
  endif()
  add_executable(${F_NAME} ${F_SOURCES})
  target_compile_options(${F_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${F_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${F_NAME} PRIVATE wisp::host_options ${F_LIBS})
  # New inputs go to a corpus in the build tree; the seeds in the source tree are
  # only read. Crash artifacts land next to the binary.
  set(work ${CMAKE_CURRENT_BINARY_DIR}/${F_NAME}.corpus)
  file(MAKE_DIRECTORY ${work})
  set(args -max_total_time=${F_SECONDS} -rss_limit_mb=1024 -print_final_stats=1
      -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/${F_NAME}- ${work})
  if(F_CORPUS)
    list(APPEND args ${F_CORPUS})
  endif()
  add_test(NAME ${F_NAME}.bounded_run_finds_nothing COMMAND ${F_NAME} ${args})
  set_tests_properties(${F_NAME}.bounded_run_finds_nothing PROPERTIES
      LABELS "unit;fuzz" TIMEOUT ${F_SECONDS}0)
  add_dependencies(wisp_unit_tests ${F_NAME})
endfunction()

add_custom_target(wisp_unit_tests)
