/* Breaks the recursion rule: depth calls itself (line 5). */
static int depth(int n)
{
    if (n > 0)
        return 1 + depth(n - 1);
    return 0;
}

int tree_depth(int n)
{
    return depth(n);
}
