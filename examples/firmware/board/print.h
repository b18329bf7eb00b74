/* print.h: numbers as text without printf, on top of board_puts. Floats
 * print as the 8 hex digits of their IEEE-754 bits, so a comparison with
 * another machine's run is exact; the reader decodes them. */
#ifndef PRINT_H
#define PRINT_H

#include <stdint.h>

/* Prints v in decimal. */
void print_u64(uint64_t v);

/* Prints the bits of f as 8 lower-case hex digits (1.0f is 3f800000). */
void print_f32_bits(float f);

#endif
