/*
 * Guest entry point. wisp-vmm enters here in ring 3 with rsp = boot_info.stack_top
 * (16-byte aligned) and every other register zero. The .bss is zero already: the
 * monitor loads only file-backed bytes into fresh (zeroed) guest memory.
 */
    .section .text.entry, "ax"
    .globl _start
    .type _start, @function
_start:
    xorl %ebp, %ebp            /* outermost frame for backtraces */
    movq $0x1000, %rdi         /* WISP_BOOT_INFO_GPA */
    call wisp_runtime_start    /* never returns */
    ud2
    .size _start, . - _start

/* The ABI note the loader checks (see WISP_NOTE_* in wisp_hypercall.h). */
    .section .note.wisp, "a"
    .balign 4
    .long 5                    /* n_namesz: "wisp\0" */
    .long 4                    /* n_descsz */
    .long 0x57495350           /* n_type: WISP_NOTE_TYPE_ABI */
    .asciz "wisp"
    .balign 4
    .long 1                    /* WISP_ABI_VERSION */
    .balign 4

    .section .note.GNU-stack, "", @progbits
