/* Breaks the extension rule: an attribute (line 3) and a GNU statement
 * expression (line 13). */
static float scale(float x) __attribute__((const));

static float scale(float x)
{
    return 2.0f * x;
}

float twice_max(float a, float b)
{
    float m = a > b ? a : b;
    return ({ scale(m); });
}
