# Guest toolchain: freestanding, static, non-PIE x86-64 ELF images that wisp-vmm
# loads at guest-physical == guest-virtual addresses and enters in ring 3.
#
#   * no libc, no PIE, own linker script (guest/link.ld)
#   * -ffreestanding -nostdlibinc: the compiler's own headers (stdint.h, stddef.h,
#     stdarg.h, ...) stay visible; libc headers come from guest/runtime/include.
#   * -fno-stack-protector: there is no TLS canary in a wisp guest.
#   * no -mno-red-zone: the guest has no interrupts and never leaves ring 3, so nothing
#     can clobber the red zone below rsp; keeping it saves stack adjustments.
#   * SSE/AVX code generation is allowed: the monitor enables SSE/AVX state.
#   * C++ without exceptions, RTTI or thread-safe statics (single vCPU, no unwinder).

set(WISP_GUEST_LINKER_SCRIPT ${CMAKE_SOURCE_DIR}/guest/link.ld)
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-libgcc-file-name
                OUTPUT_VARIABLE WISP_GUEST_LIBGCC OUTPUT_STRIP_TRAILING_WHITESPACE)

add_library(wisp_guest_options INTERFACE)
add_library(wisp::guest_options ALIAS wisp_guest_options)
target_compile_options(wisp_guest_options INTERFACE
    -ffreestanding -nostdlibinc -fno-stack-protector -fno-pie -fno-pic
    -fno-omit-frame-pointer -fno-asynchronous-unwind-tables -mcmodel=small
    -ffunction-sections -fdata-sections
    -Wall -Wextra -Werror
    $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti -fno-threadsafe-statics -nostdinc++>)
target_compile_definitions(wisp_guest_options INTERFACE WISP_GUEST=1)
target_include_directories(wisp_guest_options INTERFACE ${CMAKE_SOURCE_DIR}/vmm/abi)

# wisp_guest_library(<name> SOURCES ...) — a static library compiled for guests.
function(wisp_guest_library name)
  cmake_parse_arguments(G "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${name} STATIC ${G_SOURCES})
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
  target_link_libraries(${name} PUBLIC wisp::guest_options ${G_LIBS})
endfunction()

# wisp_guest_image(<name> SOURCES ... [LIBS ...])
#
# Builds ${CMAKE_BINARY_DIR}/images/<name>.elf: the app linked with the guest runtime
# (entry point, hypercalls, libc subset, ABI note) and any further guest libraries
# (e.g. wisp::guest_lwip for lwIP).
function(wisp_guest_image name)
  cmake_parse_arguments(G "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${G_SOURCES})
  set_target_properties(${name} PROPERTIES
      POSITION_INDEPENDENT_CODE OFF
      SUFFIX ".elf"
      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/images
      LINK_DEPENDS ${WISP_GUEST_LINKER_SCRIPT})
  target_link_libraries(${name} PRIVATE ${G_LIBS} wisp::guest_runtime wisp::guest_options)
  # -u _start pulls the runtime's entry object (and the ABI note beside it) out of
  # the archive: nothing else references it.
  target_link_options(${name} PRIVATE
      -nostdlib -static -fuse-ld=lld -Wl,-u,_start
      -Wl,-T,${WISP_GUEST_LINKER_SCRIPT} -Wl,--build-id=none
      -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack -Wl,--gc-sections)
  target_link_libraries(${name} PRIVATE ${WISP_GUEST_LIBGCC})
endfunction()
