/* board_mps2.c: board.h on Arm's MPS2 AN386 (Cortex-M4F) as QEMU emulates it.
 *
 * Output and exit use semihosting: `bkpt 0xab` with an operation number in
 * r0 and its argument in r1 stops the core, and the host side (a debug probe
 * with its debugger, or QEMU with `-semihosting-config enable=on`) carries
 * the operation out. Without a debugger attached, real hardware would fault
 * on the breakpoint instead.
 *
 * Instructions are counted with SysTick, the core's 24-bit down-counter,
 * clocked by the 25 MHz CPU clock. Under `qemu -icount shift=0` QEMU
 * advances its virtual clock by 1 ns per instruction, so one SysTick tick
 * is 40 instructions (DWT's cycle counter is not emulated). On hardware a
 * tick is a cycle, and board_count_read's figure would be 40 times the
 * cycles: a port to real silicon counts with DWT->CYCCNT instead. */
#include "board.h"

#include <stdint.h>

/* Semihosting operations (Arm's "Semihosting for AArch32 and AArch64"). */
enum {
    SYS_WRITE0 = 0x04,                      /* r1: a NUL-terminated string to print */
    SYS_EXIT = 0x18,                        /* r1: a reason code (no status on AArch32) */
    SYS_EXIT_EXTENDED = 0x20,               /* r1: {reason, status} */
    ADP_STOPPED_APPLICATION_EXIT = 0x20026, /* the program ended by itself */
    ADP_STOPPED_RUNTIME_ERROR = 0x20023,    /* it ended with an error */
};

/* Issues semihosting operation op with argument arg; returns r0. */
static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void board_puts(const char *s)
{
    semihost(SYS_WRITE0, s);
}

/* SYS_EXIT_EXTENDED passes the status; a host without it returns, and
 * SYS_EXIT then tells success from failure (its exit status is 0 or 1). */
void board_exit(int status)
{
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    semihost(SYS_EXIT_EXTENDED, block);
    semihost(SYS_EXIT,
             (const void *)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUNTIME_ERROR));
    for (;;)
        continue;
}

/* SysTick's registers (Armv7-M architecture reference manual, B3.3) and the
 * interrupt control register's SysTick-pending bit (B3.2.4). */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u) /* control and status */
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u) /* reload value */
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u) /* current value; a write clears it */
#define ICSR (*(volatile uint32_t *)0xE000ED04u)     /* interrupt control and state */
#define ICSR_PENDSTSET (1u << 26)                    /* the SysTick exception is pending */
#define SYST_RELOAD 0xFFFFFFu                        /* the largest: 2^24 ticks per period */
#define INSTRUCTIONS_PER_TICK 40u                    /* 1 ns per instruction / 25 MHz */

static volatile uint32_t systick_wraps; /* counted by systick_handler */

/* The SysTick exception (vector 15): the counter went from 1 to 0 once more. */
void systick_handler(void);
void systick_handler(void)
{
    systick_wraps++;
}

/* Runs SysTick on the CPU clock with its exception on. Cleared, the counter
 * reads 0 until the first tick loads SYST_RELOAD; counting starts there. */
void board_count_start(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    systick_wraps = 0;
    SYST_CSR = 0x7u; /* ENABLE | TICKINT | CLKSOURCE (the CPU clock) */
    while (SYST_CVR == 0)
        continue;
}

/* Each period counts SYST_RELOAD down to 0, where the exception comes, so
 * the ticks are the whole periods plus SYST_RELOAD - value. Read with
 * interrupts off: a wrap still pending is counted here, and the counter is
 * read again in case the wrap came after the first read. */
uint64_t board_count_read(void)
{
    uint32_t wraps, value;
    __asm__ volatile("cpsid i" ::: "memory");
    value = SYST_CVR;
    wraps = systick_wraps;
    if (ICSR & ICSR_PENDSTSET) {
        wraps++;
        value = SYST_CVR;
    }
    __asm__ volatile("cpsie i" ::: "memory");
    uint64_t periods = value == 0 ? wraps - 1u : wraps; /* at 0 the period's wrap is already counted */
    return (periods * (SYST_RELOAD + 1u) + (SYST_RELOAD - value)) * INSTRUCTIONS_PER_TICK;
}
