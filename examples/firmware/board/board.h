/* board.h: the little a model driver needs from a board: text out, an exit
 * status, and an instruction counter. Two boards implement it:
 *
 *   board_mps2.c  Arm's MPS2 AN386 (Cortex-M4F), as QEMU's `-M mps2-an386`
 *                 emulates it: output and exit through semihosting (the
 *                 debugger or QEMU prints and ends the run), instructions
 *                 counted with SysTick (exact under `qemu -icount shift=0`).
 *                 startup_mps2.c and mps2_an386.ld go with it.
 *   board_host.c  the same calls on a POSIX host (stdout, exit), so one
 *                 driver builds for the target and for the desktop and the
 *                 two runs can be compared.
 *
 * print.c formats numbers on top of board_puts, without printf: newlib's
 * stdio would cost more flash than a small model does. */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

/* Writes the NUL-terminated string s to the console. */
void board_puts(const char *s);

/* Ends the program with exit status `status` (0: success); never returns. */
void board_exit(int status) __attribute__((noreturn));

/* Starts counting instructions (no-op where the board has no counter). */
void board_count_start(void);

/* Instructions executed since board_count_start; 0 where the board cannot
 * count them. */
uint64_t board_count_read(void);

#endif
