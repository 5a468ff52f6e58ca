# tools/bench/scale/density*: 1,000 running / 10,000 standby on one host — memory,
# idle CPU, wake latency against the 10-service case, restores per second.
# Run: tools/bench/scale/density.sh (docs/density.md). Included from
# tools/bench/scale/CMakeLists.txt, beside the load-step benchmark of this folder.
add_executable(wisp-bench-density ${CMAKE_CURRENT_LIST_DIR}/density.cpp)
target_link_libraries(wisp-bench-density PRIVATE wisp::host_options wisp::test_support
                      wisp::wispd_core)
add_dependencies(wisp-bench-density wispd wisp wisp-vmm hello)
