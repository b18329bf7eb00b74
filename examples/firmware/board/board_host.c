/* board_host.c: board.h on a POSIX host (stdout and exit), so a driver written
 * for the board also builds with the desktop compiler and its output can be
 * compared with the target's. There is no instruction counter here. */
#include "board.h"

#include <stdio.h>
#include <stdlib.h>

void board_puts(const char *s)
{
    fputs(s, stdout);
}

void board_exit(int status)
{
    exit(fflush(stdout) == 0 ? status : 1);
}

void board_count_start(void) {}

uint64_t board_count_read(void)
{
    return 0;
}
