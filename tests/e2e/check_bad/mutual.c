/* Breaks the recursion rule through two functions: is_even calls is_odd
 * (line 9), which calls is_even (line 16). */
static int is_odd(unsigned n);

static int is_even(unsigned n)
{
    if (n == 0)
        return 1;
    return is_odd(n - 1);
}

static int is_odd(unsigned n)
{
    if (n == 0)
        return 0;
    return is_even(n - 1);
}

int parity(unsigned n)
{
    return is_odd(n);
}
