/* startup_mps2.c: what runs before main on a Cortex-M4F (MPS2 AN386).
 *
 * At reset the core loads its stack pointer from address 0x0 and jumps to
 * the address at 0x4: the first two words of the vector table below, which
 * mps2_an386.ld places at the start of flash. reset_handler then makes the C
 * world main expects: initialised globals copied from flash to RAM (.data),
 * the others zeroed (.bss and .psram), the FPU switched on. */
#include "board.h"

#include <stdint.h>

/* Addresses the linker script defines (see mps2_an386.ld). */
extern uint32_t _sidata[];            /* .data's initial values, in flash */
extern uint32_t _sdata[], _edata[];   /* .data in RAM */
extern uint32_t _sbss[], _ebss[];     /* .bss in RAM */
extern uint32_t _spsram[], _epsram[]; /* .psram: zeroed like .bss */
extern uint32_t _estack[];            /* top of the stack: the end of RAM */

int main(void);
void reset_handler(void);
void fault_handler(void);
void systick_handler(void);

/* Stops a program that faulted (a bad address, an undefined instruction,
 * a division by zero when trapped) or raised an exception it has no
 * handler for: says so and ends with status 3. */
void fault_handler(void)
{
    board_puts("fault: the program stopped in fault_handler\n");
    board_exit(3);
}

/* Fills [p, end) with zeros, a word at a time. */
static void zero_words(uint32_t *p, const uint32_t *end)
{
    while (p < end)
        *p++ = 0;
}

/* The reset entry point: copies .data, zeroes .bss and .psram, grants full
 * access to the FPU's coprocessors CP10 and CP11 (CPACR bits 20-23; until
 * then any float instruction faults), runs main and exits with its status. */
void reset_handler(void)
{
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    const uint32_t *src = _sidata;
    uint32_t *dst = _sdata;
    while (dst < _edata)
        *dst++ = *src++;
    zero_words(_sbss, _ebss);
    zero_words(_spsram, _epsram);
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory"); /* the new access rights apply from the next instruction */
    board_exit(main());
}

/* The Cortex-M vector table: the initial stack pointer, then the handlers
 * of the 15 system exceptions (0: reserved). The board's interrupts
 * (UARTs, timers) would follow; this program uses none of them. */
typedef void (*vector)(void);
struct vector_table {
    uint32_t *initial_sp;
    vector exceptions[15];
};

/* clang-format off */
__attribute__((section(".vectors"), used)) const struct vector_table vector_table = {
    _estack,
    {
        reset_handler,   /* 1  Reset */
        fault_handler,   /* 2  NMI */
        fault_handler,   /* 3  HardFault */
        fault_handler,   /* 4  MemManage */
        fault_handler,   /* 5  BusFault */
        fault_handler,   /* 6  UsageFault */
        0, 0, 0, 0,      /* 7-10 reserved */
        fault_handler,   /* 11 SVCall */
        fault_handler,   /* 12 DebugMonitor */
        0,               /* 13 reserved */
        fault_handler,   /* 14 PendSV */
        systick_handler, /* 15 SysTick: board_mps2.c counts its wraps */
    },
};
/* clang-format on */
