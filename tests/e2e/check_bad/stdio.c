/* Breaks the stdio rule: prints (line 6). */
#include <stdio.h>

void report(int step)
{
    printf("step %d\n", step);
}
