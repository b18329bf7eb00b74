/* print.c: decimal integers and float bits as text (see print.h). */
#include "print.h"

#include "board.h"

#include <string.h>

void print_u64(uint64_t v)
{
    char buf[21]; /* 2^64 - 1 has 20 digits */
    char *p = buf + sizeof buf - 1;
    *p = '\0';
    do {
        *--p = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    board_puts(p);
}

void print_f32_bits(float f)
{
    static const char hex[] = "0123456789abcdef";
    char buf[9];
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits); /* the bit pattern, without breaking aliasing rules */
    for (int i = 7; i >= 0; i--) {
        buf[i] = hex[bits & 0xFu];
        bits >>= 4;
    }
    buf[8] = '\0';
    board_puts(buf);
}
