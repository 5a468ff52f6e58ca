# BPF toolchain: <name>.bpf.c -> clang -target bpf -> bpftool gen object -> bpftool gen
# skeleton -> <name>.skel.h in the build tree.
#
# Programs use only kernel UAPI headers (linux/bpf.h, linux/if_ether.h, ...) and
# libbpf's bpf_helpers.h, never a vmlinux.h generated on the build host, so the
# objects do not depend on the machine that built them.

find_program(WISP_BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(WISP_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(WISP_BPF_ARCH_INCLUDE "/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}")
if(NOT CMAKE_LIBRARY_ARCHITECTURE)
  set(WISP_BPF_ARCH_INCLUDE "/usr/include/x86_64-linux-gnu")
endif()

# wisp_bpf_object(<name> SOURCE <file.bpf.c> [INCLUDES dir...])
#
# Creates the interface target `<name>_skel`: link it to get `#include "<name>.skel.h"`
# and libbpf. The object is named <name> inside the skeleton (struct <name>,
# <name>__open(), ...).
function(wisp_bpf_object name)
  cmake_parse_arguments(B "" "SOURCE" "INCLUDES" ${ARGN})
  get_filename_component(src ${B_SOURCE} ABSOLUTE)
  set(outdir ${CMAKE_CURRENT_BINARY_DIR}/bpfgen)
  set(raw ${outdir}/${name}.raw.o)
  set(obj ${outdir}/${name}.bpf.o)
  set(skel ${outdir}/${name}.skel.h)
  set(incs -I${CMAKE_SOURCE_DIR}/bpf -I${WISP_BPF_ARCH_INCLUDE})
  foreach(dir ${B_INCLUDES})
    list(APPEND incs -I${dir})
  endforeach()
  add_custom_command(
      OUTPUT ${obj} ${skel}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${outdir}
      # -mcpu=v3: 32-bit atomics (the data plane's compare-and-swap on a u32 state
      # field) and jmp32/alu32, which also keep verifier state small.
      COMMAND ${WISP_BPF_CLANG} -O2 -g -target bpf -mcpu=v3 -D__TARGET_ARCH_x86
              -Wall -Werror -Wno-unused-function ${incs}
              -MD -MF ${raw}.d -c ${src} -o ${raw}
      COMMAND ${WISP_BPFTOOL} gen object ${obj} ${raw}
      COMMAND sh -c "${WISP_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp && mv ${skel}.tmp ${skel}"
      DEPENDS ${src}
      DEPFILE ${raw}.d
      COMMENT "BPF ${name}: ${B_SOURCE} -> ${name}.skel.h"
      VERBATIM)
  add_custom_target(${name}_gen DEPENDS ${obj} ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_gen)
  target_include_directories(${name}_skel INTERFACE ${outdir} ${CMAKE_SOURCE_DIR}/bpf)
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  set_property(TARGET ${name}_skel PROPERTY WISP_BPF_OBJECT ${obj})
endfunction()
